//! What to emit when the user's input has errors.
//!
//! The goal is that each mistake shows as one error, where it was made,
//! and that nothing else does. So beside the errors we emit:
//!
//! - the user's trait as written (minus our attributes), so that the
//!   handler's `impl Notes for ...` keeps compiling;
//! - stand-ins for the generated items (`NotesContract`, `NotesClient` with
//!   one method per trait method, `NotesServer`; for an events trait,
//!   `NotesEventsEmitter` and `NotesEventsListener` with one method per
//!   event; and the `notes_methods` module that `expose!` reaches), so that
//!   code using them does not add "cannot find type `NotesClient`" or "no
//!   method named `get`" errors. Rust 1.95 also hides missing-item errors
//!   next to a `compile_error!`, but older compilers and rust-analyzer do
//!   not. The stand-ins have the real items' names and signatures, but
//!   their bodies do nothing: they are never part of a built program, since
//!   the errors stop the build;
//! - the serde checks of the argument and result types that are owned and
//!   concrete (the others are already reported), so that a type without
//!   `Serialize` is reported in the same compile as the other mistakes
//!   rather than in the next one.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{visit::Visit, GenericParam, Generics, TraitItem, Type, WherePredicate};

use crate::{
    ast::{Flavor, Method, Service},
    expand, names, valid,
};

/// The errors, the user's trait and stand-ins for the generated items.
pub fn service(errors: syn::Error, model: &Service) -> TokenStream {
    let service = without_duplicates(model);
    let mut out = errors.to_compile_error();
    service.item.to_tokens(&mut out);
    out.extend(expand::expand_contract(&service, false));
    match service.flavor {
        Flavor::Service => {
            out.extend(stub_client(&service));
            out.extend(stub_server(&service));
        }
        Flavor::Events => out.extend(stub_events(&service)),
    }
    out.extend(expand::expand_methods_module(&service));
    let trait_is_generic = !service.item.generics.params.is_empty();
    let checkable = service
        .methods
        .iter()
        .filter(|m| !trait_is_generic && m.sig().generics.params.is_empty())
        .flat_map(Method::wire_types)
        .filter(|ty| valid::is_owned_type(ty));
    out.extend(expand::expand_type_checks(checkable));
    out
}

/// The error beside the input as given, for input that is not a trait.
pub fn passthrough(error: syn::Error, input: TokenStream) -> TokenStream {
    let mut out = error.to_compile_error();
    out.extend(input);
    out
}

/// The model without the second and later methods of one name (already
/// reported), so that neither the trait nor the stand-ins repeat a name and
/// add errors of their own.
fn without_duplicates(model: &Service) -> Service {
    let mut service = model.clone();
    let mut seen = HashSet::new();
    service
        .methods
        .retain(|m| seen.insert(m.ident().to_string()));
    let mut seen = HashSet::new();
    service.item.items.retain(|item| match item {
        TraitItem::Fn(f) => seen.insert(f.sig.ident.to_string()),
        _ => true,
    });
    service
}

/// `NotesClient` with one do-nothing method per trait method, with the
/// signature the real one would have. Parts the client cannot express are
/// replaced: an argument naming `Self` or `_` takes any value, and such a
/// result (or an `impl Trait` one, which a do-nothing body cannot choose)
/// becomes `()`. Generic parameters the method mentions, its own or the
/// trait's, are kept so that their names resolve.
fn stub_client(service: &Service) -> TokenStream {
    let methods = service
        .methods
        .iter()
        .filter(|m| !names::CLIENT_RESERVED.contains(&m.ident().to_string().as_str()))
        .map(|m| {
            let ident = m.ident();
            let docs = expand::client_docs(service, m);
            let generics = method_generics(&service.item.generics, m);
            let (params, _, where_clause) = generics.split_for_impl();
            let args = stub_args(m);
            let ret = if m.wire_types().iter().any(|ty| Unfit::of(ty).in_result()) {
                quote!(())
            } else {
                expand::client_return_type(m)
            };
            quote! {
                #docs
                #[allow(unused_variables)]
                pub async fn #ident #params(&self, #(#args),*) -> #ret #where_clause {
                    loop {}
                }
            }
        });
    expand::client_shell(service, quote!(#(#methods)*))
}

/// A stand-in's parameters: each argument with its type, or any value
/// where the type is one a stand-in cannot express.
fn stub_args(m: &Method) -> impl Iterator<Item = TokenStream> + '_ {
    m.args.iter().map(|a| {
        let ident = &a.ident;
        let ty = &a.ty;
        if Unfit::of(ty).in_argument() {
            quote!(#ident: impl ::core::marker::Sized)
        } else {
            quote!(#ident: #ty)
        }
    })
}

/// `NotesEventsEmitter` and `NotesEventsListener` with one do-nothing
/// method per event, with the signatures the real ones would have, so that
/// main code that emits and renderer code that listens adds no error of its
/// own. Argument types the stand-ins cannot express are handled as in
/// [`stub_client`]; a listener whose closure would take one accepts any
/// value instead. The emitter does not implement the trait, which may be
/// the part in error.
fn stub_events(service: &Service) -> TokenStream {
    let rt = expand::rt();
    let vis = &service.item.vis;
    let emitter = expand::names_of(service).server;
    let events: Vec<&Method> = service
        .methods
        .iter()
        .filter(|m| m.ident() != "new")
        .collect();
    let emits = events.iter().map(|m| {
        let ident = m.ident();
        let generics = method_generics(&service.item.generics, m);
        let (params, _, where_clause) = generics.split_for_impl();
        let args = stub_args(m);
        quote! {
            /// Stand-in while the events trait has errors.
            #[allow(unused_variables)]
            pub fn #ident #params(&self, #(#args),*) -> usize #where_clause {
                0
            }
        }
    });
    let listens = events.iter().map(|m| {
        let on = names::listener_method("on", m.ident());
        let docs = expand::client_docs(service, m);
        let generics = method_generics(&service.item.generics, m);
        let (params, _, where_clause) = generics.split_for_impl();
        let tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let f = if tys.iter().any(|ty| Unfit::of(ty).in_result()) {
            quote!(f: impl ::core::marker::Sized)
        } else {
            quote!(f: impl ::core::ops::FnMut(#(#tys),*) + ::core::marker::Send + 'static)
        };
        // `stream_<event>`: the events as values, one argument as itself,
        // several as a tuple; any value where the stand-in cannot name it.
        let stream = names::listener_method("stream", m.ident());
        let (stream_params, item) = if tys.iter().any(|ty| Unfit::of(ty).in_result()) {
            let mut generics = generics.clone();
            generics.params.push(syn::parse_quote!(__IpcItem));
            let (params, _, _) = generics.split_for_impl();
            (params.to_token_stream(), quote!(__IpcItem))
        } else {
            let item = match &tys[..] {
                [ty] => quote!(#ty),
                _ => quote!((#(#tys),*)),
            };
            (params.to_token_stream(), item)
        };
        quote! {
            #docs
            #[allow(unused_variables)]
            pub async fn #on #params(&self, #f)
                -> ::core::result::Result<#rt::Subscription, #rt::IpcError> #where_clause
            {
                loop {}
            }

            /// Stand-in while the events trait has errors.
            pub async fn #stream #stream_params(&self)
                -> ::core::result::Result<#rt::EventStream<#item>, #rt::IpcError> #where_clause
            {
                loop {}
            }
        }
    });
    let listener = expand::client_shell(service, quote!(#(#listens)*));
    quote! {
        #listener

        /// Stand-in while the events trait has errors.
        #vis struct #emitter;

        impl #emitter {
            /// Stand-in while the events trait has errors.
            pub fn new(_: &#rt::Main, _: #rt::Target) -> Self {
                #emitter
            }

            #(#emits)*
        }
    }
}

/// `NotesServer` for any handler, serving nothing. Its constructors accept
/// any handler: whether the handler implements the trait is checked again
/// once the errors are fixed.
fn stub_server(service: &Service) -> TokenStream {
    let rt = expand::rt();
    let expand::Names {
        contract, server, ..
    } = expand::names_of(service);
    let dispatch = quote! {
        impl<H: ::core::marker::Send + ::core::marker::Sync + 'static> #rt::Dispatch for #server<H> {
            fn descriptor(&self) -> &'static #rt::ServiceDescriptor {
                <#contract as #rt::Service>::DESCRIPTOR
            }

            fn call(
                &self,
                method: usize,
                _: #rt::Bytes,
            ) -> #rt::Handler {
                #rt::Handler::no_such_method(method)
            }
        }
    };
    expand::server_shell(service, quote!(::core::marker::Sized), dispatch)
}

/// The method's generics, preceded by those of the trait that the
/// method's signature mentions (lifetimes first, without defaults, which a
/// method cannot have). Unmentioned trait parameters are left out: on a
/// client method they could not be inferred at the call.
fn method_generics(outer: &Generics, method: &Method) -> Generics {
    let inner = &method.sig().generics;
    let mut used = Mentions::default();
    for input in &method.sig().inputs {
        used.visit_fn_arg(input);
    }
    used.visit_return_type(&method.sig().output);
    used.visit_generics(inner);
    let trait_params: Vec<&GenericParam> = outer
        .params
        .iter()
        .filter(|p| used.0.contains(&param_name(p)))
        .collect();
    let kept: HashSet<String> = trait_params.iter().map(|p| param_name(p)).collect();
    let excluded: HashSet<String> = outer
        .params
        .iter()
        .map(param_name)
        .filter(|n| !kept.contains(n))
        .collect();
    let mut params: Vec<GenericParam> = trait_params
        .into_iter()
        .chain(&inner.params)
        .cloned()
        .collect();
    params.sort_by_key(|p| !matches!(p, GenericParam::Lifetime(_)));
    for param in &mut params {
        match param {
            GenericParam::Type(t) => {
                t.eq_token = None;
                t.default = None;
            }
            GenericParam::Const(c) => {
                c.eq_token = None;
                c.default = None;
            }
            GenericParam::Lifetime(_) => {}
        }
    }
    let predicates: Vec<WherePredicate> = outer
        .where_clause
        .iter()
        .flat_map(|w| &w.predicates)
        .filter(|p| {
            let mut names = Mentions::default();
            names.visit_where_predicate(p);
            names.0.is_disjoint(&excluded)
        })
        .chain(inner.where_clause.iter().flat_map(|w| &w.predicates))
        .cloned()
        .collect();
    let mut generics = Generics::default();
    if !params.is_empty() {
        generics.lt_token = Some(Default::default());
        generics.params = params.into_iter().collect();
        generics.gt_token = Some(Default::default());
    }
    if !predicates.is_empty() {
        generics.make_where_clause().predicates = predicates.into_iter().collect();
    }
    generics
}

/// The name of a generic parameter: `T`, `'a` or `N`.
fn param_name(param: &GenericParam) -> String {
    match param {
        GenericParam::Type(t) => t.ident.to_string(),
        GenericParam::Lifetime(l) => l.lifetime.to_string(),
        GenericParam::Const(c) => c.ident.to_string(),
    }
}

/// Every identifier and lifetime a syntax tree mentions.
#[derive(Default)]
struct Mentions(HashSet<String>);

impl<'ast> Visit<'ast> for Mentions {
    fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
        self.0.insert(ident.to_string());
    }

    fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
        self.0.insert(lifetime.to_string());
    }
}

/// What in a type a do-nothing client method cannot express.
struct Unfit {
    self_or_infer: bool,
    impl_trait: bool,
    /// `str` or a slice, already reported: as an argument, or inside an
    /// `Option` or a `Result`, it would add "size cannot be known" errors.
    no_size: bool,
}

impl Unfit {
    fn of(ty: &Type) -> Unfit {
        let mut unfit = Unfit {
            self_or_infer: false,
            impl_trait: false,
            no_size: false,
        };
        unfit.visit_type(ty);
        unfit
    }

    /// `Self` would mean the client; `_` is refused in any signature.
    fn in_argument(&self) -> bool {
        self.self_or_infer || self.no_size
    }

    /// A do-nothing body cannot choose the type behind an `impl Trait`.
    fn in_result(&self) -> bool {
        self.self_or_infer || self.impl_trait || self.no_size
    }
}

impl<'ast> Visit<'ast> for Unfit {
    fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
        self.self_or_infer |= ident == "Self";
    }

    fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
        self.self_or_infer = true;
    }

    fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
        self.impl_trait = true;
    }

    fn visit_type_slice(&mut self, _: &'ast syn::TypeSlice) {
        self.no_size = true;
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        self.no_size |= t.qself.is_none() && t.path.is_ident("str");
        syn::visit::visit_type_path(self, t);
    }

    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        // `&str` and `&[T]` are sized (and reported as borrowed).
        let sized = self.no_size;
        syn::visit::visit_type_reference(self, r);
        self.no_size = sized;
    }
}
