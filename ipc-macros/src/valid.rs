//! The rules a service trait must follow, one function per rule.
//!
//! Every rule reports to the [`Ctxt`] and carries on, so that one compile
//! shows every mistake. Messages name the problem, point at the user's own
//! tokens and say what to write instead.

use std::collections::HashMap;

use syn::{visit::Visit, FnArg, ReturnType, Type};

use crate::{
    ast::{Kind, Method, Service},
    ctxt::Ctxt,
    names,
};

/// Runs every rule over `service`.
pub fn check_service(cx: &mut Ctxt, service: &Service) {
    check_namespace(cx, service);
    check_trait_shape(cx, service);
    for method in &service.methods {
        check_channel_part(cx, method);
        check_signature(cx, method);
        check_send_returns_nothing(cx, method);
    }
    check_unique_channels(cx, service);
}

/// The namespace is required and must be a valid channel part: it is the
/// prefix of every channel of the trait (`notes` in `notes:get`).
fn check_namespace(cx: &mut Ctxt, service: &Service) {
    match &service.namespace {
        None => cx.error_spanned_by(
            service.ident(),
            format!(
                "missing namespace: write #[service(namespace = \"{}\")] so that this trait's channels are named `namespace:method`",
                names::kebab_case(&to_snake(&service.ident().to_string()))
            ),
        ),
        Some(lit) => {
            if let Err(why) = names::check_part(&lit.value()) {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "invalid namespace {:?}: {why}; a namespace is {}",
                        lit.value(),
                        names::NAME_PATTERN
                    ),
                );
            }
        }
    }
}

/// Generic traits, lifetimes and supertraits would make the contract depend
/// on types only known at the use site, which the wire cannot carry.
fn check_trait_shape(cx: &mut Ctxt, service: &Service) {
    let item = &service.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &item.generics,
            "an IPC trait cannot be generic: its channels must have one concrete type each; \
             use concrete types in the methods instead",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(unsafety, "an IPC trait cannot be `unsafe`");
    }
    if let Some(auto) = &item.auto_token {
        cx.error_spanned_by(auto, "an IPC trait cannot be an auto trait");
    }
}

/// A method's channel part (its rename, or its name in kebab-case) must
/// follow the channel name pattern.
fn check_channel_part(cx: &mut Ctxt, method: &Method) {
    let part = &method.channel_part;
    let Err(why) = names::check_part(part) else {
        return;
    };
    match &method.rename {
        Some(lit) => cx.error_spanned_by(
            lit,
            format!(
                "invalid channel name {part:?}: {why}; a channel name is {}",
                names::NAME_PATTERN
            ),
        ),
        None => cx.error_spanned_by(
            method.ident(),
            format!(
                "the method name `{}` does not give a valid channel name ({part:?}: {why}); \
                 name the method in snake_case or give the channel with #[ipc(rename = \"...\")]",
                method.ident()
            ),
        ),
    }
}

/// Two methods on one channel would make dispatch ambiguous.
fn check_unique_channels(cx: &mut Ctxt, service: &Service) {
    let mut seen: HashMap<&str, &Method> = HashMap::new();
    for method in &service.methods {
        if let Some(first) = seen.get(method.channel_part.as_str()) {
            let channel = service.channel(method);
            cx.error_spanned_by(
                method.channel_tokens(),
                format!(
                    "`{}` and `{}` both map to the channel `{channel}`; give one of them another name with #[ipc(rename = \"...\")]",
                    first.ident(),
                    method.ident()
                ),
            );
            cx.error_spanned_by(
                first.channel_tokens(),
                format!("`{}` is also mapped to `{channel}` here", first.ident()),
            );
        } else {
            seen.insert(&method.channel_part, method);
        }
    }
}

/// Methods are `async fn name(&self, arg: OwnedType, ...) -> OwnedType`:
/// each argument and the result travel between processes by value.
fn check_signature(cx: &mut Ctxt, method: &Method) {
    let sig = method.sig();
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format!(
                "`{}` must be an `async fn`: every IPC method crosses a process boundary; write `async fn {}(...)`",
                sig.ident, sig.ident
            ),
        );
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "an IPC method cannot be `const`");
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(u, "an IPC method cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "an IPC method cannot have an `extern` ABI");
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "an IPC method cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            format!(
                "`{}` cannot be generic or have lifetime parameters: each channel carries one concrete type; use concrete, owned types",
                sig.ident
            ),
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {
            if let Some((_, Some(lt))) = &r.reference {
                cx.error_spanned_by(lt, "write `&self` without a lifetime");
            }
        }
        Some(FnArg::Receiver(r)) if r.mutability.is_some() => cx.error_spanned_by(
            r,
            "IPC methods take `&self`, not `&mut self`: main calls handlers concurrently; \
             keep mutable state behind a Mutex or RwLock inside the handler",
        ),
        Some(FnArg::Receiver(r)) => cx.error_spanned_by(
            r,
            "IPC methods take `&self`: the handler is shared by every call",
        ),
        _ => cx.error_spanned_by(
            &sig.ident,
            format!(
                "`{}` has no receiver: IPC methods take `&self` as their first argument (`async fn {}(&self, ...)`)",
                sig.ident, sig.ident
            ),
        ),
    }
    for arg in sig.inputs.iter().filter_map(|a| match a {
        FnArg::Typed(t) => Some(t),
        FnArg::Receiver(_) => None,
    }) {
        check_owned_type(cx, &arg.ty, "argument");
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_owned_type(cx, ty, "return type");
    }
}

/// Arguments and results are decoded from bytes in another process, so they
/// must be owned (`String`, not `&str`) and concrete (no `impl Trait`).
fn check_owned_type(cx: &mut Ctxt, ty: &Type, what: &str) {
    struct Finder<'a> {
        cx: &'a mut Ctxt,
        what: &'a str,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            let owned = owned_form(&r.elem);
            self.cx.error_spanned_by(
                r,
                format!(
                    "borrowed {} type: IPC values are decoded into new memory on the other side, so they cannot borrow; use an owned type such as {owned}",
                    self.what
                ),
            );
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.cx.error_spanned_by(
                t,
                format!(
                    "`impl Trait` is not allowed as an IPC {}: the other process needs one concrete type to decode; name the type",
                    self.what
                ),
            );
        }
        fn visit_type_trait_object(&mut self, t: &'ast syn::TypeTraitObject) {
            self.cx.error_spanned_by(
                t,
                format!(
                    "a trait object cannot be an IPC {}: name a concrete type",
                    self.what
                ),
            );
        }
        fn visit_lifetime(&mut self, lt: &'ast syn::Lifetime) {
            self.cx.error_spanned_by(
                lt,
                format!(
                    "lifetimes are not allowed in an IPC {}: values cross a process boundary and must be owned",
                    self.what
                ),
            );
        }
    }
    Finder { cx, what }.visit_type(ty);
}

/// A suggestion for the owned form of a borrowed type.
fn owned_form(elem: &Type) -> String {
    let written = quote::quote!(#elem).to_string().replace(' ', "");
    match written.as_str() {
        "str" => "`String`".to_string(),
        "[u8]" => "`Vec<u8>`".to_string(),
        "Path" | "std::path::Path" => "`PathBuf`".to_string(),
        w if w.starts_with('[') => {
            format!("`Vec<{}>`", w.trim_start_matches('[').trim_end_matches(']'))
        }
        w => format!("`{w}`"),
    }
}

/// A fire-and-forget method has nobody to return a value to.
fn check_send_returns_nothing(cx: &mut Ctxt, method: &Method) {
    if method.kind != Kind::Send {
        return;
    }
    if let ReturnType::Type(_, ty) = &method.sig().output {
        let is_unit = matches!(&**ty, Type::Tuple(t) if t.elems.is_empty());
        if !is_unit {
            cx.error_spanned_by(
                ty,
                format!(
                    "`{}` is #[ipc(send)] (fire and forget), so it cannot return a value: nobody waits for it; \
                     remove the return type, or remove `send` to make it a request/reply method",
                    method.ident()
                ),
            );
        }
    }
}

/// `NotesService` → `notes_service`, for suggesting a namespace.
fn to_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
