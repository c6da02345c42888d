//! CloudAlbum's page templates (`templates/*.hbs`), compiled in, by name.
//!
//! A crate of its own that the app's library does not depend on: the binaries
//! (and tests) hand these to `cloudalbum::AppState`. A change to a page then
//! rebuilds this small crate and relinks the binary instead of recompiling the
//! whole app: about a second instead of ten in `deployer watch`.

/// Every template: `(name, Handlebars source)`.
pub const ALL: &[(&str, &str)] = &[
    ("layout", include_str!("../../../templates/layout.hbs")),
    ("error", include_str!("../../../templates/error.hbs")),
    ("signin", include_str!("../../../templates/signin.hbs")),
    ("signup", include_str!("../../../templates/signup.hbs")),
    ("confirm", include_str!("../../../templates/confirm.hbs")),
    ("forgot", include_str!("../../../templates/forgot.hbs")),
    ("reset", include_str!("../../../templates/reset.hbs")),
    ("profile", include_str!("../../../templates/profile.hbs")),
    ("album", include_str!("../../../templates/album.hbs")),
    ("photo", include_str!("../../../templates/photo.hbs")),
    ("upload", include_str!("../../../templates/upload.hbs")),
    ("edit", include_str!("../../../templates/edit.hbs")),
    ("delete", include_str!("../../../templates/delete.hbs")),
    ("map", include_str!("../../../templates/map.hbs")),
];
