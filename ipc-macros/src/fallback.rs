//! What to emit when the user's input has errors.
//!
//! The errors, plus the user's trait as written (minus our attributes), so
//! that code using the trait keeps compiling and the user sees the real
//! errors, not a cascade of "cannot find trait" ones.

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ast::Service;

/// The errors beside the user's trait.
pub fn service(errors: syn::Error, model: &Service) -> TokenStream {
    let mut out = errors.to_compile_error();
    model.item.to_tokens(&mut out);
    out
}

/// The error beside the input as given, for input that is not a trait.
pub fn passthrough(error: syn::Error, input: TokenStream) -> TokenStream {
    let mut out = error.to_compile_error();
    out.extend(input);
    out
}
