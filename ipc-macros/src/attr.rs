//! Parsing of the macros' attributes: `#[service(...)]` and `#[ipc(...)]`.
//!
//! Parsing records what was written, with its span; whether the values are
//! acceptable is decided in `valid.rs`.

use proc_macro2::{Span, TokenStream};
use syn::{meta::ParseNestedMeta, Attribute, LitStr};

use crate::ctxt::Ctxt;

/// The name of the attribute placed on a service's methods.
pub const IPC: &str = "ipc";
/// `#[service(namespace = "...")]`.
const NAMESPACE: &str = "namespace";
/// `#[ipc(send)]`.
const SEND: &str = "send";
/// `#[ipc(rename = "...")]`.
const RENAME: &str = "rename";

/// The arguments of `#[service(...)]` or `#[events(...)]`.
pub struct ContainerAttrs {
    /// The channel namespace, as written.
    pub namespace: Option<LitStr>,
}

/// Parses `namespace = "..."` out of the macro's arguments.
pub fn container(cx: &mut Ctxt, macro_name: &str, args: TokenStream) -> ContainerAttrs {
    let mut namespace: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(NAMESPACE) {
            let value: LitStr = meta.value()?.parse()?;
            if namespace.is_some() {
                return Err(meta.error("`namespace` is given twice; keep one"));
            }
            namespace = Some(value);
            Ok(())
        } else {
            Err(unknown(&meta, macro_name, &[NAMESPACE]))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
    }
    ContainerAttrs { namespace }
}

/// The `#[ipc(...)]` options of one method.
#[derive(Default)]
pub struct MethodAttrs {
    /// `#[ipc(send)]`: fire and forget; the span of the `send` word.
    pub send: Option<Span>,
    /// `#[ipc(rename = "...")]`: the explicit channel part.
    pub rename: Option<LitStr>,
}

/// Parses and removes the `#[ipc(...)]` attributes of one method, leaving the
/// others (doc comments, lints) in place.
pub fn method(cx: &mut Ctxt, attrs: &mut Vec<Attribute>) -> MethodAttrs {
    let mut out = MethodAttrs::default();
    attrs.retain(|attr| {
        if !attr.path().is_ident(IPC) {
            return true;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(SEND) {
                if out.send.is_some() {
                    return Err(meta.error("`send` is given twice; keep one"));
                }
                out.send = Some(span_of(&meta));
                Ok(())
            } else if meta.path.is_ident(RENAME) {
                let value: LitStr = meta.value()?.parse()?;
                if out.rename.is_some() {
                    return Err(meta.error("`rename` is given twice; keep one"));
                }
                out.rename = Some(value);
                Ok(())
            } else {
                Err(unknown(&meta, IPC, &[SEND, RENAME]))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
        false
    });
    out
}

fn span_of(meta: &ParseNestedMeta) -> Span {
    meta.path
        .get_ident()
        .map_or_else(Span::call_site, proc_macro2::Ident::span)
}

/// An error for an unknown option, suggesting the closest known one.
fn unknown(meta: &ParseNestedMeta, attr: &str, known: &[&str]) -> syn::Error {
    let written = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| quote::ToTokens::to_token_stream(&meta.path).to_string());
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = closest(&written, known)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    meta.error(format!(
        "unknown option `{written}` in #[{attr}(...)]: expected one of {list}{hint}"
    ))
}

/// The known name closest to `written`, if it is close enough to be a typo.
pub fn closest<'a>(written: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(written, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(written.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("sned", &["send", "rename"]), Some("send"));
        assert_eq!(closest("renam", &["send", "rename"]), Some("rename"));
        assert_eq!(closest("frobnicate", &["send", "rename"]), None);
    }
}
