//! Where generated code finds the runtime crate.
//!
//! Under the name the user's `Cargo.toml` gives `ipc-runtime`
//! (`::ipc_runtime`, or the new name of a renamed dependency, found with
//! `proc-macro-crate`), or at the path a `crate = "..."` option gives (a
//! facade crate re-exporting the runtime).

use std::cell::RefCell;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote_spanned;

/// The runtime crate, for the expansion under way.
#[derive(Clone)]
enum Runtime {
    /// A dependency of the user's crate, by name.
    Named(String),
    /// A path the user gave.
    Path(syn::Path),
}

thread_local! {
    /// Set for the duration of one macro call by [`with_runtime`].
    static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

/// Runs `expand` with generated code reaching the runtime at `explicit`
/// (from a `crate = "..."` option) or, without one, under the name the
/// user's `Cargo.toml` gives `ipc-runtime`.
pub fn with_runtime<R>(explicit: Option<syn::Path>, expand: impl FnOnce() -> R) -> R {
    let runtime = match explicit {
        Some(path) => Runtime::Path(path),
        None => Runtime::Named(dependency_name()),
    };
    let previous = RUNTIME.with(|r| r.replace(Some(runtime)));
    let out = expand();
    RUNTIME.with(|r| *r.borrow_mut() = previous);
    out
}

/// The name under which the crate being compiled depends on
/// `ipc-runtime`: `ipc_runtime` unless its `Cargo.toml` renames it (or it
/// cannot be read, or the runtime is reached another way, through a facade
/// that should then be named with `crate = "..."`).
fn dependency_name() -> String {
    match proc_macro_crate::crate_name("ipc-runtime") {
        Ok(proc_macro_crate::FoundCrate::Name(name)) => name,
        // The runtime's own tests and doc tests are crates of their own,
        // which reach it by its name.
        Ok(proc_macro_crate::FoundCrate::Itself) | Err(_) => "ipc_runtime".to_string(),
    }
}

/// The runtime's root path (`::ipc_runtime`), spanned at `span`.
pub fn root(span: Span) -> TokenStream {
    let runtime = RUNTIME.with(|r| r.borrow().clone());
    match runtime {
        Some(Runtime::Path(path)) => quote_spanned!(span=> #path),
        Some(Runtime::Named(name)) => {
            let name = Ident::new(&name, span);
            quote_spanned!(span=> ::#name)
        }
        None => quote_spanned!(span=> ::ipc_runtime),
    }
}

/// The runtime's root as a doc link target names it (`::ipc_runtime`,
/// `my_facade::ipc`): for links from generated docs.
pub fn doc_root() -> String {
    root(Span::call_site()).to_string().replace(' ', "")
}

/// The runtime's root as code in a module declared beside the macro's
/// output reaches it, and any item that must come with it. A path the
/// user gave relative to the macro's module (`crate = "ipc"` after `use
/// ipc_runtime as ipc;`) means nothing inside that module: it is imported
/// beside it as `alias`, and reached there as `super::alias`.
pub fn root_for_child_module(alias: &Ident) -> (TokenStream, TokenStream) {
    let runtime = RUNTIME.with(|r| r.borrow().clone());
    match runtime {
        Some(Runtime::Path(path))
            if path.leading_colon.is_none()
                && path.segments.first().is_some_and(|s| s.ident != "crate") =>
        {
            let import = quote::quote! {
                #[doc(hidden)]
                #[allow(unused_imports)]
                use #path as #alias;
            };
            (import, quote::quote!(super::#alias))
        }
        _ => (TokenStream::new(), root(Span::call_site())),
    }
}
