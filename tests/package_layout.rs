//! `scripts/package` output: unzip it and check the layout the host wants (host.json at the top,
//! one folder per function with its function.json, the binary with its exec bit), and that a
//! host.json naming another executable is refused.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use datashare_dr::handlers::FUNCTIONS;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn package(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/package"))
        .args(["--binary", env!("CARGO_BIN_EXE_datashare-dr")])
        .args(args)
        .output()
        .expect("bash runs scripts/package")
}

#[test]
fn the_package_zip_has_the_host_layout_and_keeps_the_exec_bit() {
    let out_dir = tempfile::tempdir().unwrap();
    let dr = out_dir.path().join("my-dr.toml");
    std::fs::write(&dr, datashare_dr::bench::cold_start::BENCH_DR_CONFIG).unwrap();
    let out = package(&[
        "--out",
        out_dir.path().to_str().unwrap(),
        "--dr-config",
        dr.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let file = std::fs::File::open(out_dir.path().join("app.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    let mut expected: Vec<String> = FUNCTIONS
        .iter()
        .map(|f| format!("{}/function.json", f.name))
        .collect();
    expected.extend([
        "datashare-dr".to_owned(),
        "dr-config.toml".to_owned(),
        "host.json".to_owned(),
    ]);
    expected.sort();
    assert_eq!(names, expected);

    let bin = zip.by_name("datashare-dr").unwrap();
    let mode = bin.unix_mode().expect("unix mode recorded");
    assert_eq!(mode & 0o777, 0o755, "mode {mode:o}");
    assert_eq!(
        bin.size(),
        std::fs::metadata(env!("CARGO_BIN_EXE_datashare-dr"))
            .unwrap()
            .len()
    );
    drop(bin);
    let mut host = String::new();
    zip.by_name("host.json")
        .unwrap()
        .read_to_string(&mut host)
        .unwrap();
    assert_eq!(
        host,
        std::fs::read_to_string(repo().join("host.json")).unwrap()
    );
    assert_eq!(
        zip.by_name("host.json").unwrap().unix_mode().unwrap() & 0o777,
        0o644
    );

    // The folder form is there too, with the exec bit on disk.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(out_dir.path().join("app/datashare-dr")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    }
}

#[test]
fn packaging_twice_gives_the_same_zip() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [a.path(), b.path()] {
        let out = package(&["--out", d.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |d: &Path| std::fs::read(d.join("app.zip")).unwrap();
    assert!(
        read(a.path()) == read(b.path()),
        "the zip is not deterministic"
    );
}

#[test]
fn a_host_json_naming_another_executable_is_refused() {
    let src = tempfile::tempdir().unwrap();
    let host = std::fs::read_to_string(repo().join("host.json")).unwrap();
    std::fs::write(
        src.path().join("host.json"),
        host.replace("\"datashare-dr\"", "\"handler\""),
    )
    .unwrap();
    let f = src.path().join("functions/ReplicateNow");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::copy(
        repo().join("functions/ReplicateNow/function.json"),
        f.join("function.json"),
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = package(&[
        "--source",
        src.path().to_str().unwrap(),
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("defaultExecutablePath is 'handler'"), "{err}");
    assert!(!out_dir.path().join("app.zip").exists());
}

/// The value of `param drConfigPath … = '…'` in a Bicep file.
fn bicep_dr_config_path(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .filter(|l| l.trim_start().starts_with("param drConfigPath"))
        .find_map(|l| l.split('\'').nth(1).map(str::to_owned))
        .unwrap_or_else(|| panic!("{file} sets no default for drConfigPath"))
}

#[test]
fn the_packaged_dr_config_has_the_name_every_default_points_to() {
    // What scripts/package ships …
    let out_dir = tempfile::tempdir().unwrap();
    let dr = out_dir.path().join("some-name.toml");
    std::fs::write(&dr, datashare_dr::bench::cold_start::BENCH_DR_CONFIG).unwrap();
    let out = package(&[
        "--out",
        out_dir.path().to_str().unwrap(),
        "--dr-config",
        dr.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped: Vec<String> = std::fs::read_dir(out_dir.path().join("app"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert_eq!(shipped, ["dr-config.toml"], "the one packaged DR config");
    // … is what a fresh deploy's DR_CONFIG_PATH names (so `serve` finds it) …
    assert_eq!(bicep_dr_config_path("infra/main.bicep"), "dr-config.toml");
    assert_eq!(
        bicep_dr_config_path("infra/main.bicepparam"),
        "dr-config.toml"
    );
    // … and what a local `func start` of the package uses.
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("local.settings.json.sample")).unwrap(),
    )
    .unwrap();
    assert_eq!(sample["Values"]["DR_CONFIG_PATH"], "dr-config.toml");
    // The README says the same name.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("shipped as `dr-config.toml`") && !readme.contains("as `dr.toml`"),
        "README names the packaged DR config dr-config.toml"
    );
}
