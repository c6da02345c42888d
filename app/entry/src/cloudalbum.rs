//! Local entry point: [`cloudalbum::entry::local`] with the pages, on
//! 127.0.0.1 (`PORT`, default 8080).

fn main() -> std::process::ExitCode {
    cloudalbum::entry::local(cloudalbum_pages::ALL)
}
