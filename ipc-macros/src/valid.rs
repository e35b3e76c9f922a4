//! The rules a service trait must follow, one function per rule.
//!
//! Every rule reports to the [`Ctxt`] and carries on, so that one compile
//! shows every mistake. Messages name the problem, point at the user's own
//! tokens and say what to write instead.

use std::collections::{HashMap, HashSet};

use syn::{visit::Visit, FnArg, GenericParam, Ident, ReturnType, TraitItem, Type};

use crate::{
    ast::{Flavor, Kind, Method, Service},
    ctxt::Ctxt,
    names,
};

/// The most arguments a method may take: serde implements its traits for
/// tuples of up to 16 elements, and the arguments travel as one tuple. The
/// generated code relies on this limit (see `__private::probe` in the
/// runtime).
pub const MAX_ARGS: usize = 16;

/// Runs every rule over a `#[service]` or `#[events]` trait. Most rules are
/// shared; the flavour decides the reserved names, whether methods are
/// `async`, and what a method may return.
pub fn check(cx: &mut Ctxt, service: &Service) {
    check_namespace(cx, service);
    check_trait_generics(cx, service);
    check_trait_qualifiers(cx, service);
    check_only_methods(cx, service);
    for method in &service.methods {
        check_channel_part(cx, service.flavor, method);
        match service.flavor {
            Flavor::Service => {
                check_reserved_name(cx, service, method);
                check_async(cx, method);
            }
            Flavor::Events => {
                check_reserved_event_name(cx, service, method);
                check_event_not_async(cx, method);
            }
        }
        check_method_qualifiers(cx, service.flavor, method);
        check_method_generics(cx, method);
        check_receiver(cx, service.flavor, method);
        check_arity(cx, service.flavor, method);
        check_owned_types(cx, service.flavor, method);
        match service.flavor {
            Flavor::Service => check_send_returns_nothing(cx, method),
            Flavor::Events => check_event_returns_nothing(cx, method),
        }
    }
    check_unique_method_names(cx, service);
    check_unique_channels(cx, service);
}

/// The generated emitter has a constructor called `new`; an event with
/// that name would collide with it.
fn check_reserved_event_name(cx: &mut Ctxt, service: &Service, method: &Method) {
    if method.ident() == "new" {
        cx.error_spanned_by(
            method.ident(),
            format!(
                "an event cannot be called `new`: the generated `{}Emitter` already has a `new` of its own; \
                 give the event another name, and keep the channel with #[ipc(rename = \"new\")] if needed",
                service.ident()
            ),
        );
    }
}

/// An event is a push from main: emitting it only queues it, so its
/// method is a plain `fn`, not an `async fn`.
fn check_event_not_async(cx: &mut Ctxt, method: &Method) {
    if let Some(a) = &method.sig().asyncness {
        cx.error_spanned_by(
            a,
            format!(
                "an event is declared as a plain `fn`, not `async fn`: emitting `{}` only queues it for the renderers; remove `async`",
                method.ident()
            ),
        );
    }
}

/// Nobody answers an event, so it returns nothing.
fn check_event_returns_nothing(cx: &mut Ctxt, method: &Method) {
    if let Some(ty) = returned_value(method) {
        cx.error_spanned_by(
            ty,
            format!(
                "the event `{}` cannot return a value: events go from main to renderers and nobody answers them; \
                 remove the return type (for a request with a reply, declare a method in a #[service] trait)",
                method.ident()
            ),
        );
    }
}

/// The namespace is required and must be a valid channel part: it is the
/// prefix of every channel of the trait (`notes` in `notes:get`). A
/// namespace that was given but could not be read has already been
/// reported, so it is not reported again as missing.
fn check_namespace(cx: &mut Ctxt, service: &Service) {
    match &service.namespace {
        None if service.args_had_errors => {}
        None => cx.error_spanned_by(
            service.ident(),
            format!(
                "missing namespace: write #[{}(namespace = \"{}\")] so that this trait's channels are named `namespace:{}`",
                service.flavor.attr(),
                names::kebab_case(&names::snake_case(&service.ident().to_string())),
                service.flavor.item()
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

/// A generic trait (or one with lifetime parameters or a where clause)
/// would make the contract depend on types only known at the use site,
/// which the wire cannot carry.
fn check_trait_generics(cx: &mut Ctxt, service: &Service) {
    let generics = &service.item.generics;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "an IPC trait cannot be generic: its channels must have one concrete type each; \
             use concrete types in the methods instead",
        );
    } else if let Some(clause) = &generics.where_clause {
        // Spanned by the clause itself: with no `<…>`, `generics` has no
        // tokens and the error would point at the attribute.
        cx.error_spanned_by(
            clause,
            format!(
                "an IPC trait cannot have a `where` clause; \
                 write bounds on `Self` as supertraits instead (`trait {}: Send + Sync`)",
                service.item.ident
            ),
        );
    }
}

/// `unsafe trait` and `auto trait` have no meaning for a contract.
fn check_trait_qualifiers(cx: &mut Ctxt, service: &Service) {
    let item = &service.item;
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(unsafety, "an IPC trait cannot be `unsafe`");
    }
    if let Some(auto) = &item.auto_token {
        cx.error_spanned_by(auto, "an IPC trait cannot be an auto trait");
    }
}

/// Each item of the trait is one channel, so the trait holds only methods.
fn check_only_methods(cx: &mut Ctxt, service: &Service) {
    for item in &service.item.items {
        if !matches!(item, TraitItem::Fn(_)) {
            cx.error_spanned_by(
                item,
                "only methods are allowed in an IPC trait: each method is one channel; \
                 move constants and associated types elsewhere",
            );
        }
    }
}

/// A method's channel part (its rename, or its name in kebab-case) must
/// follow the channel name pattern.
fn check_channel_part(cx: &mut Ctxt, flavor: Flavor, method: &Method) {
    let part = &method.channel_part;
    let Err(why) = names::check_part(part) else {
        return;
    };
    match &method.rename {
        Some(lit) => {
            let hint = match part.rsplit_once(':') {
                Some((_, last)) => format!("; write only the part after it ({last:?})"),
                None => String::new(),
            };
            cx.error_spanned_by(
                lit,
                format!(
                    "invalid channel name {part:?}: {why}{hint}; a channel name is {}",
                    names::NAME_PATTERN
                ),
            );
        }
        None => {
            // Renaming the method helps only if snake_case would do: a
            // non-ASCII or very long name needs a channel name of its own.
            let item = flavor.item();
            let advice = if !part.is_ascii() {
                "give the channel a lowercase ASCII name with #[ipc(rename = \"...\")]".to_string()
            } else if part.len() > names::MAX_PART_LEN {
                "give the channel a shorter name with #[ipc(rename = \"...\")]".to_string()
            } else {
                format!("name the {item} in snake_case or give the channel with #[ipc(rename = \"...\")]")
            };
            cx.error_spanned_by(
                method.ident(),
                format!(
                    "the {item} name `{}` does not give a valid channel name ({part:?}: {why}); {advice}",
                    method.ident(),
                ),
            );
        }
    }
}

/// The generated client has constructors of its own (`new`,
/// `with_timeout`); a method with one of those names would collide with
/// them.
fn check_reserved_name(cx: &mut Ctxt, service: &Service, method: &Method) {
    let name = method.ident().to_string();
    if names::CLIENT_RESERVED.contains(&name.as_str()) {
        cx.error_spanned_by(
            method.ident(),
            format!(
                "a method cannot be called `{name}`: the generated `{}Client` already has a `{name}` of its own; \
                 give the method another name, and keep the channel with #[ipc(rename = \"{}\")] if needed",
                service.ident(),
                method.channel_part
            ),
        );
    }
}

/// Every IPC method crosses a process boundary, so it is `async`.
fn check_async(cx: &mut Ctxt, method: &Method) {
    let sig = method.sig();
    if sig.asyncness.is_some() {
        return;
    }
    if let Some(output) = future_output(method) {
        // `fn get(&self) -> impl Future<Output = T> + Send`: what the
        // macro generates from `async fn get(&self) -> T`.
        let output = quote::quote!(#output).to_string();
        cx.error_spanned_by(
            &sig.output,
            format!(
                "declare `{}` as `async fn {}(...) -> {output}`: the macro makes its future `Send` itself, \
                 and the other process needs the value's type, not the future's",
                sig.ident, sig.ident
            ),
        );
    } else {
        cx.error_spanned_by(
            sig.fn_token,
            format!(
                "`{}` must be an `async fn`: every IPC method crosses a process boundary; write `async fn {}(...)`",
                sig.ident, sig.ident
            ),
        );
    }
}

/// The `T` of a plain `fn` returning `impl Future<Output = T>` (with any
/// other bounds), if that is what `method` is.
fn future_output(method: &Method) -> Option<&Type> {
    let sig = method.sig();
    if sig.asyncness.is_some() {
        return None;
    }
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let Type::ImplTrait(bounds) = &**ty else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

/// `const`, `unsafe`, `extern` and variadic methods have no meaning across
/// processes.
fn check_method_qualifiers(cx: &mut Ctxt, flavor: Flavor, method: &Method) {
    let sig = method.sig();
    let an_item = flavor.an_item();
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, format!("{an_item} cannot be `const`"));
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(u, format!("{an_item} cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, format!("{an_item} cannot have an `extern` ABI"));
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, format!("{an_item} cannot be variadic"));
    }
}

/// Each channel carries one concrete type per argument, so methods have no
/// type parameters; and since values are owned, no lifetime parameters.
fn check_method_generics(cx: &mut Ctxt, method: &Method) {
    let sig = method.sig();
    let generics = &sig.generics;
    if generics.params.is_empty() {
        if let Some(clause) = &generics.where_clause {
            cx.error_spanned_by(
                clause,
                format!(
                    "`{}` cannot have a `where` clause: each channel has one fixed signature, \
                     shared with the other process; remove it",
                    sig.ident
                ),
            );
        }
        return;
    }
    let only_lifetimes = generics
        .params
        .iter()
        .all(|p| matches!(p, GenericParam::Lifetime(_)));
    let message = if only_lifetimes && generics.where_clause.is_none() {
        format!(
            "`{}` cannot have lifetime parameters: IPC arguments and results are owned values, \
             decoded afresh in the other process; remove them and use owned types (`String`, not `&str`)",
            sig.ident
        )
    } else {
        format!(
            "`{}` cannot be generic: each channel carries one concrete type per argument; \
             replace the type parameters with concrete types",
            sig.ident
        )
    };
    cx.error_spanned_by(generics, message);
}

/// Methods take `&self`: main shares one handler between concurrent calls.
/// Events take `&self` too: the generated emitter implements the trait, and
/// emitting only queues a frame, so it needs no exclusive access.
fn check_receiver(cx: &mut Ctxt, flavor: Flavor, method: &Method) {
    let sig = method.sig();
    let name = &sig.ident;
    let (who, why, example) = match flavor {
        Flavor::Service => (
            "IPC methods",
            "main shares one handler between all calls",
            format!("async fn {name}(&self, ...)"),
        ),
        Flavor::Events => (
            "events",
            "the generated emitter implements this trait, and one emitter is shared by all the code that pushes events",
            format!("fn {name}(&self, ...)"),
        ),
    };
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.colon_token.is_some() => {
            cx.error_spanned_by(r, format!("{who} take plain `&self`: {why}"));
        }
        Some(FnArg::Receiver(r)) => match &r.reference {
            Some(_) if r.mutability.is_some() => cx.error_spanned_by(
                r,
                match flavor {
                    Flavor::Service => "IPC methods take `&self`, not `&mut self`: main calls handlers concurrently; \
                         keep mutable state behind a Mutex or RwLock inside the handler"
                        .to_string(),
                    Flavor::Events => format!(
                        "events take `&self`, not `&mut self`: emitting only queues the event for the renderers, \
                         through an emitter shared by all the code that pushes; write `{example}`"
                    ),
                },
            ),
            Some((_, Some(lifetime))) => {
                cx.error_spanned_by(lifetime, "write `&self` without a lifetime");
            }
            Some((_, None)) => {}
            None => cx.error_spanned_by(
                r,
                format!("`{name}` takes `self` by value: {who} take `&self`, because {why}"),
            ),
        },
        _ => cx.error_spanned_by(
            name,
            format!("`{name}` has no receiver: {who} take `&self` as their first argument (`{example}`)"),
        ),
    }
}

/// The arguments travel as one tuple, and serde supports tuples of at most
/// [`MAX_ARGS`] elements.
fn check_arity(cx: &mut Ctxt, flavor: Flavor, method: &Method) {
    if let Some(extra) = method.args.get(MAX_ARGS) {
        cx.error_spanned_by(
            &extra.ident,
            format!(
                "`{}` has {} arguments; {} takes at most {MAX_ARGS}: \
                 group them into a struct that derives Serialize and Deserialize",
                method.ident(),
                method.args.len(),
                flavor.an_item()
            ),
        );
    }
}

/// Arguments and results are decoded from bytes in another process, so
/// they must be owned (`String`, not `&str`) and concrete (no `impl Trait`,
/// no `dyn Trait`, no `Self`).
fn check_owned_types(cx: &mut Ctxt, flavor: Flavor, method: &Method) {
    for arg in &method.args {
        Finder {
            cx: &mut *cx,
            flavor,
            what: "argument type",
        }
        .visit_type(&arg.ty);
    }
    // A `-> impl Future<Output = T>` is told to be an `async fn` (see
    // `check_async`); only its `T` crosses the wire.
    let output = match (flavor, future_output(method), &method.sig().output) {
        (Flavor::Service, Some(value), _) => Some(value),
        (_, _, ReturnType::Type(_, ty)) => Some(&**ty),
        (_, _, ReturnType::Default) => None,
    };
    if let Some(ty) = output {
        Finder {
            cx: &mut *cx,
            flavor,
            what: "return type",
        }
        .visit_type(ty);
    }
}

/// Whether `ty` passes [`check_owned_types`], so that its serde check can
/// be emitted even when other rules failed.
pub fn is_owned_type(ty: &Type) -> bool {
    let mut scratch = Ctxt::default();
    Finder {
        cx: &mut scratch,
        flavor: Flavor::Service,
        what: "type",
    }
    .visit_type(ty);
    scratch.check().is_ok()
}

/// Reports every part of a type that cannot cross the wire.
struct Finder<'a> {
    cx: &'a mut Ctxt,
    flavor: Flavor,
    what: &'static str,
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        let owned = owned_form(&r.elem);
        self.cx.error_spanned_by(
            r,
            format!(
                "borrowed {}: IPC values are decoded into new memory on the other side, so they cannot borrow; use an owned type such as {owned}",
                self.what
            ),
        );
    }

    fn visit_type_slice(&mut self, t: &'ast syn::TypeSlice) {
        self.cx.error_spanned_by(
            t,
            format!(
                "a slice has no size of its own, so it cannot be an IPC {}; use `Vec<{}>`",
                self.what,
                owned_name(&t.elem)
            ),
        );
    }

    fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
        self.cx.error_spanned_by(
            t,
            format!(
                "`impl Trait` is not allowed in an IPC {}: the other process needs one concrete type to decode; name the type",
                self.what
            ),
        );
    }

    fn visit_type_trait_object(&mut self, t: &'ast syn::TypeTraitObject) {
        self.cx.error_spanned_by(
            t,
            format!(
                "a trait object cannot be an IPC {}: the other process needs one concrete type to decode; name the type",
                self.what
            ),
        );
    }

    fn visit_type_infer(&mut self, t: &'ast syn::TypeInfer) {
        self.cx.error_spanned_by(
            t,
            format!(
                "write the IPC {} out in full: it is part of the contract",
                self.what
            ),
        );
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        let first = match &t.qself {
            Some(q) => self_ident(&q.ty),
            None => t.path.segments.first().map(|s| &s.ident),
        };
        if t.qself.is_none() && t.path.is_ident("str") {
            self.cx.error_spanned_by(
                t,
                format!(
                    "`str` has no size of its own, so it cannot be an IPC {}; use `String`",
                    self.what
                ),
            );
            return;
        }
        if t.qself.is_none() && is_rc(&t.path) {
            let written = crate::expand::type_name(&Type::Path(t.clone()));
            // The owned value to send instead: `String` for `Rc<str>`,
            // `Vec<T>` for `Rc<[T]>`, `T` for `Rc<T>`.
            let inner = match t.path.segments.last().map(|s| &s.arguments) {
                Some(syn::PathArguments::AngleBracketed(args)) => {
                    args.args.iter().find_map(|a| match a {
                        syn::GenericArgument::Type(ty) if is_str(ty) => Some("String".to_string()),
                        syn::GenericArgument::Type(Type::Slice(slice)) => {
                            Some(format!("Vec<{}>", crate::expand::type_name(&slice.elem)))
                        }
                        syn::GenericArgument::Type(ty) => Some(crate::expand::type_name(ty)),
                        _ => None,
                    })
                }
                _ => None,
            };
            let instead = inner.map_or_else(
                || "the value itself".to_string(),
                |inner| format!("`{inner}` instead"),
            );
            self.cx.error_spanned_by(
                t,
                format!(
                    "`{written}` cannot be an IPC {}: `Rc` is not `Send`, and main serves renderers from any thread; send {instead} (each side gets its own copy anyway)",
                    self.what
                ),
            );
            return;
        }
        if first.is_some_and(|i| i == "Self") {
            self.cx.error_spanned_by(
                t,
                format!(
                    "`Self` cannot appear in an IPC {}: `Self` is {}; name the concrete type",
                    self.what,
                    match self.flavor {
                        Flavor::Service => "the handler type, which the renderer does not have",
                        Flavor::Events => "the emitter type, which the renderer does not have",
                    }
                ),
            );
            return;
        }
        if t.qself.is_none() && self.visit_unsized_pointee(t) {
            return;
        }
        syn::visit::visit_type_path(self, t);
    }

    fn visit_lifetime(&mut self, lt: &'ast syn::Lifetime) {
        if lt.ident == "static" {
            return;
        }
        self.cx.error_spanned_by(
            lt,
            format!(
                "lifetimes are not allowed in an IPC {}: values cross a process boundary and must be owned",
                self.what
            ),
        );
    }
}

impl Finder<'_> {
    /// `Box<str>`, `Box<[u8]>`, `Cow<'static, str>`: owned types whose
    /// parameter may be unsized, which serde supports. (`Arc<str>` needs
    /// serde's `rc` feature: it gets advice of its own; `Rc` is refused
    /// wherever it appears.) Visits
    /// such a type, allowing `str` or a slice as the parameter itself (not
    /// deeper), and returns whether it was one.
    fn visit_unsized_pointee(&mut self, t: &syn::TypePath) -> bool {
        let Some(last) = t.path.segments.last() else {
            return false;
        };
        let shared = last.ident == "Arc";
        if !shared && last.ident != "Box" && last.ident != "Cow" {
            return false;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return false;
        };
        let unsized_arg = |arg: &syn::GenericArgument| matches!(arg, syn::GenericArgument::Type(ty) if is_str(ty) || matches!(ty, Type::Slice(_)));
        if shared && args.args.iter().any(unsized_arg) {
            let why = "serde encodes `Arc` only with its `rc` feature, and each side would have its own copy anyway";
            let written = crate::expand::type_name(&Type::Path(t.clone()));
            let slice = args.args.iter().find_map(|a| match a {
                syn::GenericArgument::Type(Type::Slice(slice)) => Some(slice),
                _ => None,
            });
            let instead = match slice {
                Some(slice) => {
                    let elem = owned_name(&slice.elem);
                    format!("`Vec<{elem}>` or `Box<[{elem}]>`")
                }
                None => "`String` or `Box<str>`".to_string(),
            };
            self.cx.error_spanned_by(
                t,
                format!(
                    "`{written}` cannot be an IPC {}: {why}; use {instead}",
                    self.what
                ),
            );
            // What the slice holds is checked too (a borrow in it, say).
            if let Some(slice) = slice {
                self.visit_type(&slice.elem);
            }
            return true;
        }
        if shared {
            return false;
        }
        for segment in &t.path.segments {
            if !std::ptr::eq(segment, last) {
                self.visit_path_segment(segment);
            }
        }
        for arg in &args.args {
            match arg {
                syn::GenericArgument::Type(ty) if is_str(ty) => {}
                syn::GenericArgument::Type(Type::Slice(slice)) => self.visit_type(&slice.elem),
                other => self.visit_generic_argument(other),
            }
        }
        true
    }
}

/// `Rc<..>`, `std::rc::Rc<..>` or `alloc::rc::Rc<..>` (by name: a type of
/// the user's called `Rc` is taken for it).
fn is_rc(path: &syn::Path) -> bool {
    let names: Vec<&Ident> = path.segments.iter().map(|s| &s.ident).collect();
    match names[..] {
        [rc] => rc == "Rc",
        [root, module, rc] => (root == "std" || root == "alloc") && module == "rc" && rc == "Rc",
        _ => false,
    }
}

/// `str`, as written bare.
fn is_str(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"))
}

/// `Self` in `<Self as Trait>::Item`.
fn self_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.first().map(|s| &s.ident),
        Type::Group(g) => self_ident(&g.elem),
        _ => None,
    }
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
    if let Some(ty) = returned_value(method) {
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

/// The method's return type, unless it returns nothing (`()`, written or
/// not).
fn returned_value(method: &Method) -> Option<&Type> {
    match &method.sig().output {
        ReturnType::Type(_, ty) if !is_unit(ty) => Some(ty),
        _ => None,
    }
}

/// `()`, in any number of parentheses or invisible groups (as `output_of`
/// reads it).
fn is_unit(ty: &Type) -> bool {
    match ty {
        Type::Tuple(t) => t.elems.is_empty(),
        Type::Paren(p) => is_unit(&p.elem),
        Type::Group(g) => is_unit(&g.elem),
        _ => false,
    }
}

/// Two methods with one name: Rust refuses the trait, and the generated
/// client and contract would have two items of one name. Reported here (and
/// the later method left out of the fallback output) so that the user sees
/// one error, not three.
fn check_unique_method_names(cx: &mut Ctxt, service: &Service) {
    let mut seen = HashSet::new();
    for method in &service.methods {
        let name = method.ident().to_string();
        if !seen.insert(name.clone()) {
            cx.error_spanned_by(
                method.ident(),
                format!(
                    "`{name}` is declared twice in this trait; give each {} its own name",
                    service.flavor.item()
                ),
            );
        }
    }
}

/// Two methods on one channel would make dispatch ambiguous. Both are
/// pointed at: the later one with the explanation, the earlier one with a
/// note.
fn check_unique_channels(cx: &mut Ctxt, service: &Service) {
    let mut seen: HashMap<&str, &Method> = HashMap::new();
    for method in &service.methods {
        if let Some(first) = seen.get(method.channel_part.as_str()) {
            if first.ident() == method.ident() {
                // The same name twice: reported by `check_unique_method_names`.
                continue;
            }
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

/// How to write `ty` owned, for advice that names it: `String` for `&str`,
/// `Vec<T>` for `&[T]`, `T` for `&T`, and other types as written. (Advice
/// to use `Vec<&str>` would only lead to the next error.)
fn owned_name(ty: &Type) -> String {
    match ty {
        Type::Reference(r) if is_str(&r.elem) => "String".to_string(),
        Type::Reference(r) => match &*r.elem {
            Type::Slice(slice) => format!("Vec<{}>", owned_name(&slice.elem)),
            elem => owned_name(elem),
        },
        Type::Paren(p) => owned_name(&p.elem),
        other => crate::expand::type_name(other),
    }
}
