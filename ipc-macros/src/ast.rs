//! The typed model of an annotated trait, built from syn.
//!
//! The model records what the user wrote, keeping the original tokens for
//! error spans; whether it is acceptable is decided in `valid.rs`, and code
//! is generated from it in `expand.rs`. Everything downstream iterates over
//! one `Vec<Method>`, never over parallel vectors.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, ToTokens as _};
use syn::{
    FnArg, GenericArgument, Ident, ItemTrait, LitStr, Pat, PatType, PathArguments, ReturnType,
    Signature, TraitItem, TraitItemFn, Type,
};

use crate::{attr, ctxt::Ctxt, names};

/// Which macro a trait was annotated with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `#[service]`: methods renderers call on main.
    Service,
    /// `#[events]`: events main pushes to renderers.
    Events,
}

impl Flavor {
    /// The attribute's name, for messages.
    pub fn attr(self) -> &'static str {
        match self {
            Flavor::Service => "service",
            Flavor::Events => "events",
        }
    }

    /// What a trait item is, for messages: "method" or "event".
    pub fn item(self) -> &'static str {
        match self {
            Flavor::Service => "method",
            Flavor::Events => "event",
        }
    }

    /// The same, with its article: "a method" or "an event".
    pub fn an_item(self) -> &'static str {
        match self {
            Flavor::Service => "an IPC method",
            Flavor::Events => "an event",
        }
    }
}

/// An annotated service or events trait.
#[derive(Clone)]
pub struct Service {
    /// Which macro was applied.
    pub flavor: Flavor,
    /// The user's trait, with the `#[ipc]` attributes removed.
    pub item: ItemTrait,
    /// `namespace = "..."`, if given.
    pub namespace: Option<LitStr>,
    /// Whether the macro's arguments had a mistake, already reported.
    pub args_had_errors: bool,
    /// The trait's methods, in declaration order.
    pub methods: Vec<Method>,
}

/// How a method is carried.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Request/reply (`invoke` / `handle`): the default.
    Invoke,
    /// Fire and forget (`send` / `on`): `#[ipc(send)]`.
    Send,
    /// A push from main (`webContents.send`): every method of an
    /// `#[events]` trait.
    Event,
}

/// What a method returns.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per method, built once per compile
pub enum Output {
    /// Nothing (`()`).
    Unit,
    /// A plain value, delivered as is.
    Value(Type),
    /// `Result<T, E>`: `E` is delivered to the caller as a typed error.
    Fallible {
        /// `T`.
        ok: Type,
        /// `E`.
        err: Type,
    },
}

/// One argument of a method.
#[derive(Clone)]
pub struct Arg {
    /// The argument's name (a generated one if the user wrote a pattern).
    pub ident: Ident,
    /// Its type, as written.
    pub ty: Type,
}

/// One method of a service.
#[derive(Clone)]
pub struct Method {
    /// The trait item, as written (minus `#[ipc]` attributes).
    pub item: TraitItemFn,
    /// Request/reply or fire-and-forget.
    pub kind: Kind,
    /// `rename = "..."`, if given.
    pub rename: Option<LitStr>,
    /// `timeout_secs = N`, if given: how long its calls wait by default.
    pub timeout_secs: Option<u64>,
    /// The method part of the channel: the rename, or the kebab-case name.
    pub channel_part: String,
    /// The arguments after the receiver.
    pub args: Vec<Arg>,
    /// The return type.
    pub output: Output,
}

impl Method {
    /// The method's name.
    pub fn ident(&self) -> &Ident {
        &self.item.sig.ident
    }

    /// The signature as written.
    pub fn sig(&self) -> &Signature {
        &self.item.sig
    }

    /// Every type that crosses the wire: the arguments' and the result's
    /// (both `T` and `E` of `Result<T, E>`).
    pub fn wire_types(&self) -> Vec<&Type> {
        let outputs = match &self.output {
            Output::Unit => vec![],
            Output::Value(t) => vec![t],
            Output::Fallible { ok, err } => vec![ok, err],
        };
        self.args.iter().map(|a| &a.ty).chain(outputs).collect()
    }

    /// The tokens to blame for a problem with the channel name.
    pub fn channel_tokens(&self) -> TokenStream {
        match &self.rename {
            Some(lit) => quote::quote!(#lit),
            None => {
                let ident = self.ident();
                quote::quote!(#ident)
            }
        }
    }
}

impl Service {
    /// The whitelist parameter of the generated client and listener
    /// (`NotesClient<W>`), in their methods' impl.
    pub fn whitelist_param(&self) -> Ident {
        self.type_param("W", "__IpcWhitelist")
    }

    /// The handler parameter of the generated server (`NotesServer<H>`),
    /// in its `Dispatch` impl.
    pub fn handler_param(&self) -> Ident {
        self.type_param("H", "__IpcHandler")
    }

    /// A name for a type parameter of the generated types that no method's
    /// signature mentions: `preferred` (`W` in `NotesClient<W>`, what users
    /// read in messages) unless the user has a type of that name, which
    /// the parameter would capture; `fallback` then. Type parameters are
    /// not hygienic.
    fn type_param(&self, preferred: &str, fallback: &str) -> Ident {
        fn mentions(tokens: TokenStream, name: &str) -> bool {
            tokens.into_iter().any(|t| match t {
                TokenTree::Ident(i) => i == name,
                TokenTree::Group(g) => mentions(g.stream(), name),
                _ => false,
            })
        }
        let taken = self
            .methods
            .iter()
            .any(|m| mentions(m.item.sig.to_token_stream(), preferred));
        Ident::new(
            if taken { fallback } else { preferred },
            proc_macro2::Span::call_site(),
        )
    }

    /// Builds the model of `item`; unreadable parts are reported to `cx`.
    pub fn from_syn(
        cx: &mut Ctxt,
        flavor: Flavor,
        args: attr::ContainerAttrs,
        mut item: ItemTrait,
    ) -> Service {
        attr::misplaced(cx, flavor, &mut item.attrs);
        let mut methods = Vec::new();
        for trait_item in &mut item.items {
            // Other items are kept in `item` and refused in `valid.rs`.
            if let TraitItem::Fn(f) = trait_item {
                let attrs = attr::method(cx, flavor, &mut f.attrs);
                methods.push(Method::from_syn(f.clone(), flavor, attrs));
            }
        }
        Service {
            flavor,
            item,
            namespace: args.namespace,
            args_had_errors: args.has_errors,
            methods,
        }
    }

    /// The trait's name.
    pub fn ident(&self) -> &Ident {
        &self.item.ident
    }

    /// The namespace string, or an empty one if it is missing (already reported).
    pub fn namespace_str(&self) -> String {
        self.namespace
            .as_ref()
            .map(LitStr::value)
            .unwrap_or_default()
    }

    /// `namespace:part` for `method`.
    pub fn channel(&self, method: &Method) -> String {
        format!("{}:{}", self.namespace_str(), method.channel_part)
    }
}

impl Method {
    fn from_syn(item: TraitItemFn, flavor: Flavor, attrs: attr::MethodAttrs) -> Method {
        let kind = match (flavor, attrs.send) {
            (Flavor::Events, _) => Kind::Event,
            (Flavor::Service, Some(_)) => Kind::Send,
            (Flavor::Service, None) => Kind::Invoke,
        };
        let channel_part = match &attrs.rename {
            Some(lit) => lit.value(),
            None => names::kebab_case(&item.sig.ident.to_string()),
        };
        let typed: Vec<&PatType> = item
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(pat) => Some(pat),
                FnArg::Receiver(_) => None,
            })
            .collect();
        // An argument written as a pattern (`_`, `(a, b)`) gets a name of
        // its own, `argN`, unless another argument is called that.
        let named: Vec<String> = typed
            .iter()
            .filter_map(|pat| match &*pat.pat {
                Pat::Ident(p) => Some(p.ident.to_string()),
                _ => None,
            })
            .collect();
        let args = typed
            .iter()
            .enumerate()
            .map(|(i, pat)| Arg {
                ident: match &*pat.pat {
                    Pat::Ident(p) => p.ident.clone(),
                    _ => {
                        let mut name = format!("arg{i}");
                        while named.contains(&name) {
                            name.push('_');
                        }
                        format_ident!("{}", name)
                    }
                },
                ty: (*pat.ty).clone(),
            })
            .collect();
        let output = match &item.sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => output_of(ty),
        };
        Method {
            item,
            kind,
            rename: attrs.rename,
            timeout_secs: attrs.timeout_secs,
            channel_part,
            args,
            output,
        }
    }
}

/// Classifies a return type: `()`, `Result<T, E>` or a plain value.
fn output_of(ty: &Type) -> Output {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Output::Unit,
        Type::Paren(p) => output_of(&p.elem),
        // A type passed through a `macro_rules!` `$t:ty` arrives in an
        // invisible group: read through it, as rustc does.
        Type::Group(g) => output_of(&g.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return Output::Value(ty.clone());
            };
            if last.ident != "Result" {
                return Output::Value(ty.clone());
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return Output::Value(ty.clone());
            };
            let types: Vec<&Type> = args
                .args
                .iter()
                .filter_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            match types.as_slice() {
                [ok, err] if args.args.len() == 2 => Output::Fallible {
                    ok: (*ok).clone(),
                    err: (*err).clone(),
                },
                _ => Output::Value(ty.clone()),
            }
        }
        _ => Output::Value(ty.clone()),
    }
}
