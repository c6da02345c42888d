//! AWS Lambda entry point: [`cloudalbum::entry::lambda`] with the pages.

fn main() -> std::process::ExitCode {
    cloudalbum::entry::lambda(cloudalbum_pages::ALL)
}
