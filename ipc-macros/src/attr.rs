//! Parsing of the macros' attributes: `#[service(...)]`, `#[events(...)]`
//! and `#[ipc(...)]`.
//!
//! Parsing records what was written, with its span; whether the values are
//! acceptable is decided in `valid.rs`. A mistake in one option is reported
//! to the [`Ctxt`] and parsing carries on with the next option, so that
//! every mistake in an attribute is reported in one compile.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{
    meta::ParseNestedMeta, spanned::Spanned as _, Attribute, Expr, ExprLit, Lit, LitStr, Token,
};

use crate::{ast::Flavor, ctxt::Ctxt};

/// The name of the attribute placed on a service's methods.
pub const IPC: &str = "ipc";
/// `#[service(namespace = "...")]`.
const NAMESPACE: &str = "namespace";
/// `#[ipc(send)]`.
const SEND: &str = "send";
/// `#[ipc(rename = "...")]`.
const RENAME: &str = "rename";
/// `#[ipc(timeout_secs = 300)]`.
const TIMEOUT_SECS: &str = "timeout_secs";
/// `#[service(crate = "...")]`, `#[ipc(crate = "...")]` on an `expose!` API.
const CRATE: &str = "crate";

/// The arguments of `#[service(...)]`.
pub struct ContainerAttrs {
    /// The channel namespace, as written.
    pub namespace: Option<LitStr>,
    /// Where the runtime crate is, if not under its own name (a facade
    /// crate re-exporting it): `crate = "my_facade::ipc"`.
    pub runtime: Option<syn::Path>,
    /// Whether a mistake in the arguments was already reported (so that a
    /// misspelled `namespace` is not also reported as missing).
    pub has_errors: bool,
}

/// Parses `namespace = "..."` (and `crate = "..."`) out of the macro's
/// arguments.
pub fn container(cx: &mut Ctxt, macro_name: &str, args: TokenStream) -> ContainerAttrs {
    let mut namespace: Option<LitStr> = None;
    let mut runtime = None;
    let mut has_errors = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(CRATE) {
            match crate_path(cx, &meta)? {
                Some(path) => runtime = Some(path),
                None => has_errors = true,
            }
        } else if meta.path.is_ident(NAMESPACE) {
            let value = string_value(cx, &meta, NAMESPACE, "notes")?;
            match (value, &namespace) {
                (Some(_), Some(_)) => {
                    cx.syn_error(meta.error("`namespace` is given twice; keep one"));
                    has_errors = true;
                }
                (Some(value), None) => namespace = Some(value),
                (None, _) => has_errors = true,
            }
        } else {
            cx.syn_error(unknown(&meta, macro_name, &[NAMESPACE, CRATE]));
            has_errors = true;
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
        has_errors = true;
    }
    ContainerAttrs {
        namespace,
        runtime,
        has_errors,
    }
}

/// Parses `= "path"` after `crate`: where the generated code finds the
/// runtime crate. A mistake is reported to `cx` (and `None` returned).
fn crate_path(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<syn::Path>> {
    let Some(lit) = string_value(cx, meta, CRATE, "my_facade::ipc")? else {
        return Ok(None);
    };
    match lit.parse::<syn::Path>() {
        Ok(path) => Ok(Some(path)),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                "`crate` takes the path the runtime crate is reached at, like `crate = \"my_facade::ipc\"`",
            );
            Ok(None)
        }
    }
}

/// The `#[ipc(crate = "...")]` of an `expose!` API, taken out of its
/// attributes (the others stay). `None` if there is none; a mistake is
/// reported to `cx`.
pub fn api_runtime(cx: &mut Ctxt, attrs: &mut Vec<Attribute>) -> Option<syn::Path> {
    let mut runtime = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident(IPC) {
            return true;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(CRATE) {
                runtime = crate_path(cx, &meta)?;
            } else {
                cx.syn_error(unknown(&meta, IPC, &[CRATE]));
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
        false
    });
    runtime
}

/// The `#[ipc(...)]` options of one method.
#[derive(Default)]
pub struct MethodAttrs {
    /// `#[ipc(send)]`: fire and forget; the span of the `send` word.
    pub send: Option<Span>,
    /// `#[ipc(rename = "...")]`: the explicit channel part.
    pub rename: Option<LitStr>,
    /// `#[ipc(timeout_secs = N)]`: how long the method's calls wait, by
    /// default (at least 1).
    pub timeout_secs: Option<u64>,
}

/// Parses and removes the `#[ipc(...)]` attributes of one method, leaving the
/// others (doc comments, lints) in place. An event takes only `rename`: it
/// is always a push from main, so `send` and `timeout_secs` are refused
/// with messages of their own.
pub fn method(cx: &mut Ctxt, flavor: Flavor, attrs: &mut Vec<Attribute>) -> MethodAttrs {
    let mut out = MethodAttrs::default();
    let known: &[&str] = match flavor {
        Flavor::Service => &[SEND, RENAME, TIMEOUT_SECS],
        Flavor::Events => &[RENAME],
    };
    attrs.retain(|attr| {
        let conditional = attr.path().is_ident("cfg")
            || (attr.path().is_ident("cfg_attr") && cfg_attr_lints(attr).is_none());
        if conditional && flavor == Flavor::Service && cfg_attr_sets_only_timeout(attr) {
            cx.error_spanned_by(
                attr,
                "`timeout_secs` cannot be set under a condition: the macro reads `#[ipc(...)]` before `cfg` is decided. \
                 Declare one `#[ipc(timeout_secs = N)]`, or choose the wait at run time with \
                 `Connection::builder().call_timeout(..)` or the client's `with_timeout(..)`",
            );
            return false;
        }
        if conditional {
            let also = if attr.path().is_ident("cfg_attr") {
                " (a `cfg_attr` that only adds doc comments or lint levels is fine)"
            } else {
                ""
            };
            cx.error_spanned_by(
                attr,
                format!(
                    "`#[{}]` on one {} of an IPC contract is not supported: main and its renderers must see the same contract; \
                     put the condition on the whole trait, or move the {} to a trait of its own{also}",
                    attr.path().get_ident().map(ToString::to_string).unwrap_or_default(),
                    flavor.item(),
                    flavor.item()
                ),
            );
            return false;
        }
        if !attr.path().is_ident(IPC) {
            return true;
        }
        if !matches!(attr.meta, syn::Meta::List(_)) {
            let message = match flavor {
                Flavor::Service => {
                    "#[ipc] needs an option: `#[ipc(send)]`, `#[ipc(rename = \"...\")]` or `#[ipc(timeout_secs = 300)]`"
                }
                Flavor::Events => {
                    "#[ipc] needs an option: on an event, `#[ipc(rename = \"...\")]`"
                }
            };
            cx.error_spanned_by(attr, message);
            return false;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(SEND) && flavor == Flavor::Events {
                skip_value(&meta)?;
                cx.syn_error(meta.error(
                    "`send` does not apply to events: every method of an #[events] trait is a push from main to renderers; remove it",
                ));
            } else if meta.path.is_ident(SEND) {
                if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                    skip_value(&meta)?;
                    cx.syn_error(meta.error("`send` takes no value: write `#[ipc(send)]`"));
                } else if out.send.is_some() {
                    cx.syn_error(meta.error("`send` is given twice; keep one"));
                } else {
                    out.send = Some(span_of(&meta));
                }
            } else if meta.path.is_ident(TIMEOUT_SECS) && flavor == Flavor::Events {
                skip_value(&meta)?;
                cx.syn_error(meta.error(
                    "`timeout_secs` does not apply to events: main pushes them, and nothing waits for a reply; remove it",
                ));
            } else if meta.path.is_ident(TIMEOUT_SECS) {
                if let Some(secs) = seconds_value(cx, &meta)? {
                    if out.timeout_secs.is_some() {
                        cx.syn_error(meta.error("`timeout_secs` is given twice; keep one"));
                    } else {
                        out.timeout_secs = Some(secs);
                    }
                }
            } else if meta.path.is_ident(RENAME) {
                let value = string_value(cx, &meta, RENAME, "get-user")?;
                if let Some(value) = value {
                    if out.rename.is_some() {
                        cx.syn_error(meta.error("`rename` is given twice; keep one"));
                    } else {
                        out.rename = Some(value);
                    }
                }
            } else {
                cx.syn_error(unknown(&meta, IPC, known));
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
        false
    });
    out
}

/// Reports and removes `#[ipc(...)]` attributes on the trait itself: they
/// belong on its methods, and left in place they would only add "cannot
/// find attribute `ipc`".
pub fn misplaced(cx: &mut Ctxt, flavor: Flavor, attrs: &mut Vec<Attribute>) {
    attrs.retain(|attr| {
        if !attr.path().is_ident(IPC) {
            return true;
        }
        cx.error_spanned_by(
            attr,
            format!(
                "#[ipc(...)] goes on the trait's {}s, not on the trait; \
                 the namespace goes in #[{}(namespace = \"...\")]",
                flavor.item(),
                flavor.attr()
            ),
        );
        false
    });
}

/// Lint levels and `#[deprecated]`: what the generated copies of a trait's
/// items carry (see `expand::lint_attrs`), and, with doc comments, all a
/// method's `#[cfg_attr]` may add.
const LINT_LEVELS: [&str; 6] = ["allow", "expect", "warn", "deny", "forbid", "deprecated"];

/// Whether `path` names a lint level or `deprecated` ([`LINT_LEVELS`]).
pub fn is_lint_level(path: &syn::Path) -> bool {
    LINT_LEVELS.iter().any(|name| path.is_ident(name))
}

/// Turns `expect(..)` into `allow(..)`, for a copy that would not always
/// fulfil the expectation; leaves any other attribute as it is.
pub fn expect_as_allow(meta: &mut syn::Meta) {
    if let syn::Meta::List(list) = meta {
        if list.path.is_ident("expect") {
            list.path = syn::parse_quote_spanned!(list.path.span()=> allow);
        }
    }
}

/// The lint-level attributes of a `#[cfg_attr(predicate, ...)]` that adds
/// only doc comments and lint levels (which cannot change the contract):
/// its predicate and those attributes, `#[expect]`s turned into
/// `#[allow]`s for the generated copies that carry them. `None` for any
/// other `cfg_attr` (one adding `#[ipc(...)]` or `#[cfg]`).
pub fn cfg_attr_lints(attr: &Attribute) -> Option<(syn::Meta, Vec<syn::Meta>)> {
    use syn::{punctuated::Punctuated, Meta};
    let (predicate, inner) = attr
        .parse_args_with(|input: syn::parse::ParseStream| {
            let predicate: Meta = input.parse()?;
            input.parse::<Token![,]>()?;
            let inner = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
            Ok((predicate, inner))
        })
        .ok()?;
    // Doc comments and lint levels never change a contract.
    if !inner
        .iter()
        .all(|m| m.path().is_ident("doc") || is_lint_level(m.path()))
    {
        return None;
    }
    let lints = inner
        .into_iter()
        .filter(|m| !m.path().is_ident("doc"))
        .map(|mut m| {
            expect_as_allow(&mut m);
            m
        })
        .collect();
    Some((predicate, lints))
}

/// Whether `attr` is a `#[cfg_attr(predicate, ...)]` whose `#[ipc(...)]`
/// options are all `timeout_secs` (beside doc comments and lint levels):
/// a condition that does not touch the contract, refused with a message of
/// its own.
fn cfg_attr_sets_only_timeout(attr: &Attribute) -> bool {
    use syn::{punctuated::Punctuated, Meta};
    if !attr.path().is_ident("cfg_attr") {
        return false;
    }
    let Ok(inner) = attr.parse_args_with(|input: syn::parse::ParseStream| {
        input.parse::<Meta>()?;
        input.parse::<Token![,]>()?;
        Punctuated::<Meta, Token![,]>::parse_terminated(input)
    }) else {
        return false;
    };
    let mut sets_timeout = false;
    for meta in &inner {
        if meta.path().is_ident("doc") || is_lint_level(meta.path()) {
            continue;
        }
        let Meta::List(list) = meta else { return false };
        if !list.path.is_ident(IPC) {
            return false;
        }
        let Ok(options) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            return false;
        };
        if options.is_empty() || !options.iter().all(|o| o.path().is_ident(TIMEOUT_SECS)) {
            return false;
        }
        sets_timeout = true;
    }
    sets_timeout
}

/// Parses `= "..."` after an option that takes a string. A missing or
/// non-string value is reported to `cx` (and `None` returned); only input
/// that cannot be read at all ends the parsing of the attribute.
fn string_value(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta,
    name: &str,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    let missing = || format!("`{name}` needs a value: write `{name} = \"{example}\"`");
    let Some(expr) = value_of(cx, meta, missing)? else {
        return Ok(None);
    };
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit)),
        other => {
            let written = match &other {
                Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                _ => None,
            };
            let example = written.as_deref().unwrap_or(example);
            cx.error_spanned_by(
                &other,
                format!("`{name}` takes a string in quotes: write `{name} = \"{example}\"`"),
            );
            Ok(None)
        }
    }
}

/// Parses `timeout_secs = N`: a whole number of seconds, at least 1.
fn seconds_value(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<u64>> {
    let example = "for example `timeout_secs = 300`";
    let missing =
        || format!("`{TIMEOUT_SECS}` needs a value: a whole number of seconds, {example}");
    let Some(expr) = value_of(cx, meta, missing)? else {
        return Ok(None);
    };
    let problem = match &expr {
        // A suffix would be dropped by the parse below, and the attribute
        // never reaches rustc: `1m` would mean one second.
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) if !lit.suffix().is_empty() => format!(
            "`{TIMEOUT_SECS}` counts seconds and takes no suffix (`{}` is not a unit it knows): write the number of seconds alone, {example}",
            lit.suffix()
        ),
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<u64>() {
            Ok(0) => "a timeout of 0 seconds would fail every call; give at least 1".to_string(),
            Ok(secs) => return Ok(Some(secs)),
            Err(_) => format!("`{TIMEOUT_SECS}` is out of range: at most {} seconds", u64::MAX),
        },
        _ => format!("`{TIMEOUT_SECS}` takes a whole number of seconds, {example}"),
    };
    cx.error_spanned_by(&expr, problem);
    Ok(None)
}

/// The expression after an option's `=`; without one, reports `missing()`
/// and skips whatever the option has instead (`None`).
fn value_of(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta,
    missing: impl FnOnce() -> String,
) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        skip_value(meta)?;
        cx.syn_error(meta.error(missing()));
        return Ok(None);
    }
    let mut expr: Expr = meta.value()?.parse()?;
    // A literal passed through a `macro_rules!` `$ns:literal` or `$ns:expr`
    // arrives in an invisible group.
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    Ok(Some(expr))
}

/// Skips the value of an option (`= expr` or `(...)`), so that parsing can
/// carry on with the next option.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _: TokenTree = meta.input.parse()?;
    }
    Ok(())
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
        .unwrap_or_else(|| meta.path.to_token_stream().to_string().replace(' ', ""));
    // `timeout` for `timeout_secs`: a known option the written one begins.
    let begun = || {
        known
            .iter()
            .copied()
            .find(|k| written.len() >= 4 && k.starts_with(written.as_str()))
    };
    let hint = match closest(&written, known).or_else(begun) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("expected {}", one_of(known)),
    };
    syn::Error::new_spanned(
        &meta.path,
        format!("unknown option `{written}` in #[{attr}(...)]; {hint}"),
    )
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
fn one_of(known: &[&str]) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
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

    #[test]
    fn lists() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b"]), "`a` or `b`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
