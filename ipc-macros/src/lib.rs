//! Procedural macros behind `ipc-runtime`, in the same workspace (its docs:
//! `cargo doc -p ipc-runtime --open`).
//!
//! Do not depend on this crate directly: `ipc-runtime` re-exports every macro
//! and pins this crate to the exact version its generated code expects.
//!
//! `#[service]` and `#[events]` follow the same pipeline, one file per
//! step: `attr.rs` parses the attributes, `ast.rs` builds one typed model
//! of the user's trait (every node keeps the user's tokens for error
//! spans), `valid.rs` checks the model and collects *all* errors in a
//! `ctxt::Ctxt`, and only a model without errors reaches `expand.rs`. On
//! error, `fallback.rs` emits the errors beside the user's trait and
//! stand-ins for the generated items, so that one mistake shows one error
//! rather than a cascade. `expose.rs` does the same for `expose!`: it
//! checks the declaration, then expands it so that the names only the
//! compiler can resolve are each resolved once, on the user's tokens.
//!
//! The compile-fail tests in the workspace's `tests/ui/` show every message,
//! one small case per rule.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod expose;
mod fallback;
mod krate;
mod names;
mod valid;

use proc_macro::TokenStream;

// Documented where `ipc-runtime` re-exports it: these docs are only for
// this crate's own pages (dependencies are built without `cfg(doc)`), so
// that the re-export's page does not end with a pointer to itself.
#[cfg_attr(
    doc,
    doc = "Turns a trait into a typed IPC service: main-side dispatch, a renderer-side client and the contract descriptor.\n\nUse it as `ipc_runtime::service`, documented there with examples."
)]
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let input = proc_macro2::TokenStream::from(input);
    expand::service(args, input).into()
}

#[cfg_attr(
    doc,
    doc = "Turns a trait into a typed set of events that main pushes to renderers: a main-side emitter and a renderer-side listener.\n\nUse it as `ipc_runtime::events`, documented there with examples."
)]
#[proc_macro_attribute]
pub fn events(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let input = proc_macro2::TokenStream::from(input);
    expand::events(args, input).into()
}

#[cfg_attr(
    doc,
    doc = "Declares renderer API types: each lists, per service and events trait, exactly the methods and events a renderer accepted as that type may reach.\n\nUse it as `ipc_runtime::expose`, documented there with examples."
)]
#[proc_macro]
pub fn expose(input: TokenStream) -> TokenStream {
    expose::expose(proc_macro2::TokenStream::from(input)).into()
}
