//! Azure regions: the one normalising function, the list of public regions shipped in the code
//! (with where Azure Data Share is offered), and the check a configured region name passes.
//!
//! - [`normalize_region`]: `"West Europe"` → `westeurope` (lower-case, whitespace removed) — ARM
//!   locations, Service Health display names and the DR config compare through it, everywhere.
//! - [`check_region`]: a known name (or display name) → [`RegionCheck::Known`]; a name one or
//!   two edits away from a known one → [`RegionCheck::Typo`] (a config error with a did-you-mean:
//!   a typo silently turns alert-driven failover off); anything else → [`RegionCheck::Unlisted`]
//!   (a warning only: Azure adds regions faster than this list).
//!
//! Caveat: the list is the public cloud as known when written, and "Data Share offered" follows
//! Azure's products-by-region page at that time; both only produce warnings when they are stale,
//! never refuse a region absent from them.
//!
//! Pure: no IO. Must not import anything of this crate outside `config::dr`.

use super::walk::distance;

/// One public Azure region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Programmatic name (ARM `location`), e.g. `westeurope`.
    pub name: &'static str,
    /// Display name, e.g. `West Europe`.
    pub display: &'static str,
    /// Azure Data Share accounts can be created here.
    pub data_share: bool,
}

const fn r(name: &'static str, display: &'static str, data_share: bool) -> Region {
    Region {
        name,
        display,
        data_share,
    }
}

/// The public Azure regions (sorted by name).
pub const REGIONS: &[Region] = &[
    r("australiacentral", "Australia Central", false),
    r("australiacentral2", "Australia Central 2", false),
    r("australiaeast", "Australia East", true),
    r("australiasoutheast", "Australia Southeast", false),
    r("austriaeast", "Austria East", false),
    r("belgiumcentral", "Belgium Central", false),
    r("brazilsouth", "Brazil South", true),
    r("brazilsoutheast", "Brazil Southeast", false),
    r("canadacentral", "Canada Central", true),
    r("canadaeast", "Canada East", false),
    r("centralindia", "Central India", true),
    r("centralus", "Central US", true),
    r("chilecentral", "Chile Central", false),
    r("eastasia", "East Asia", true),
    r("eastus", "East US", true),
    r("eastus2", "East US 2", true),
    r("francecentral", "France Central", true),
    r("francesouth", "France South", false),
    r("germanynorth", "Germany North", false),
    r("germanywestcentral", "Germany West Central", true),
    r("indonesiacentral", "Indonesia Central", false),
    r("israelcentral", "Israel Central", false),
    r("italynorth", "Italy North", false),
    r("japaneast", "Japan East", true),
    r("japanwest", "Japan West", false),
    r("jioindiacentral", "Jio India Central", false),
    r("jioindiawest", "Jio India West", false),
    r("koreacentral", "Korea Central", true),
    r("koreasouth", "Korea South", false),
    r("malaysiawest", "Malaysia West", false),
    r("mexicocentral", "Mexico Central", false),
    r("newzealandnorth", "New Zealand North", false),
    r("northcentralus", "North Central US", true),
    r("northeurope", "North Europe", true),
    r("norwayeast", "Norway East", true),
    r("norwaywest", "Norway West", false),
    r("polandcentral", "Poland Central", false),
    r("qatarcentral", "Qatar Central", false),
    r("southafricanorth", "South Africa North", true),
    r("southafricawest", "South Africa West", false),
    r("southcentralus", "South Central US", true),
    r("southeastasia", "Southeast Asia", true),
    r("southindia", "South India", false),
    r("spaincentral", "Spain Central", false),
    r("swedencentral", "Sweden Central", true),
    r("swedensouth", "Sweden South", false),
    r("switzerlandnorth", "Switzerland North", true),
    r("switzerlandwest", "Switzerland West", false),
    r("uaecentral", "UAE Central", false),
    r("uaenorth", "UAE North", true),
    r("uksouth", "UK South", true),
    r("ukwest", "UK West", false),
    r("westcentralus", "West Central US", true),
    r("westeurope", "West Europe", true),
    r("westindia", "West India", false),
    r("westus", "West US", true),
    r("westus2", "West US 2", true),
    r("westus3", "West US 3", true),
];

/// Normalises a region for comparison: lower-case, whitespace removed, so that the ARM location
/// `westeurope` and the Service Health display name `West Europe` compare equal. The one
/// function for this in the crate.
pub fn normalize_region(region: &str) -> String {
    region
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The listed region a name or display name means, if any.
pub fn find_region(text: &str) -> Option<&'static Region> {
    let n = normalize_region(text);
    REGIONS.iter().find(|r| r.name == n)
}

/// What a configured region name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionCheck {
    /// A listed region.
    Known(&'static Region),
    /// Not listed, but close to a listed one: almost certainly a typo.
    Typo { suggestion: &'static str },
    /// Not listed and not close to any: perhaps a region newer than the list.
    Unlisted,
}

/// Checks a region name (or display name). Pure.
pub fn check_region(text: &str) -> RegionCheck {
    if let Some(r) = find_region(text) {
        return RegionCheck::Known(r);
    }
    let n = normalize_region(text);
    let limit = (n.chars().count() / 4).max(1);
    REGIONS
        .iter()
        .map(|r| (distance(&n, r.name), r.name))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map_or(RegionCheck::Unlisted, |(_, suggestion)| RegionCheck::Typo {
            suggestion,
        })
}

/// The load-time warning for a valid region name, if any: a region not in the list, or one
/// where Data Share is not offered. `key` names the setting (`pairs[0].primary_region`).
pub fn region_warning(key: &str, region: &str) -> Option<String> {
    match check_region(region) {
        RegionCheck::Known(r) if r.data_share => None,
        RegionCheck::Known(r) => Some(format!(
            "{key} = {:?}: Azure Data Share is not offered in {} ({}); a Data Share account \
             cannot be created there",
            region, r.display, r.name
        )),
        RegionCheck::Typo { .. } | RegionCheck::Unlisted => Some(format!(
            "{key} = {region:?} is not an Azure region this tool knows; if it is new, check that \
             Data Share is offered there (alerts for it are matched by this exact name)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display_names_normalise_to_the_listed_region() {
        for (text, want) in [
            ("westeurope", "westeurope"),
            ("West Europe", "westeurope"),
            (" WEST  EUROPE ", "westeurope"),
            ("East US 2", "eastus2"),
        ] {
            assert_eq!(find_region(text).map(|r| r.name), Some(want), "{text}");
        }
    }

    #[test]
    fn every_listed_display_name_normalises_to_its_name_and_names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in REGIONS {
            assert_eq!(normalize_region(r.display), r.name, "{r:?}");
            assert!(seen.insert(r.name), "duplicate {}", r.name);
        }
        // The regions the tests and the drill use, and the big ones, offer Data Share.
        for n in ["westeurope", "northeurope", "eastus", "westus2"] {
            assert!(find_region(n).is_some_and(|r| r.data_share), "{n}");
        }
    }

    #[test]
    fn a_near_miss_is_a_typo_with_a_suggestion_and_a_far_one_is_unlisted() {
        let table: &[(&str, RegionCheck)] = &[
            (
                "westeurop",
                RegionCheck::Typo {
                    suggestion: "westeurope",
                },
            ),
            (
                "West Eurpoe",
                RegionCheck::Typo {
                    suggestion: "westeurope",
                },
            ),
            (
                "northeuropa",
                RegionCheck::Typo {
                    suggestion: "northeurope",
                },
            ),
            ("marsnorth", RegionCheck::Unlisted),
            ("antarcticacentral", RegionCheck::Unlisted),
        ];
        for (text, want) in table {
            assert_eq!(check_region(text), *want, "{text}");
        }
    }

    #[test]
    fn warnings_name_regions_without_data_share_and_unlisted_ones_only() {
        assert_eq!(region_warning("primary_region", "westeurope"), None);
        let w = region_warning("primary_region", "ukwest").expect("no Data Share in UK West");
        assert!(w.contains("not offered") && w.contains("UK West"), "{w}");
        let w = region_warning("secondary_region", "marsnorth").expect("unlisted");
        assert!(w.contains("not an Azure region"), "{w}");
    }
}
