//! Process start-up: App::build and serve (being built).
