//! The language server behind `pipe lsp`: the front end's own spans, names, diagnostics and
//! explanations served to editors (navigation, completion, hover, rename, quick fixes).

mod actions;
mod analysis;
mod completion;
mod context;
mod docs;
mod hover;
mod locations;
mod navigation;
mod rename;
mod server;
mod symbols;
mod text;

pub use server::serve;
