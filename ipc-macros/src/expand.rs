//! Code generation from a validated model.
//!
//! Generated code reaches the runtime only through
//! `::ipc_runtime::__private`, so the runtime can reorganise its modules
//! without breaking expansions, and never depends on this crate's features.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::{spanned::Spanned, Attribute, ItemTrait, ReturnType, Type, TypeParamBound};

use crate::{
    ast::{Kind, Method, Output, Service},
    attr,
    ctxt::Ctxt,
    fallback, names, valid,
};

/// Entry point of `#[service]`.
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemTrait = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "#[service] goes on a trait: `#[service(namespace = \"notes\")] pub trait Notes { ... }`",
            );
            return fallback::passthrough(e, input);
        }
    };
    let mut cx = Ctxt::default();
    let attrs = attr::container(&mut cx, "service", args);
    let model = Service::from_syn(&mut cx, attrs.namespace, item);
    valid::check_service(&mut cx, &model);
    match cx.check() {
        Ok(()) => expand_service(&model),
        Err(e) => fallback::service(e, &model),
    }
}

/// The `__private` path that generated code uses for every runtime item.
fn rt() -> TokenStream {
    quote!(::ipc_runtime::__private)
}

fn expand_service(service: &Service) -> TokenStream {
    let trait_def = expand_trait(service);
    let contract = expand_contract(service);
    let client = expand_client(service);
    let server = expand_server(service);
    let checks = expand_type_checks(service);
    quote! {
        #trait_def
        #contract
        #client
        #server
        #checks
    }
}

/// Item names derived from the trait's name.
struct Names {
    contract: Ident,
    client: Ident,
    server: Ident,
}

fn names_of(service: &Service) -> Names {
    let ident = service.ident();
    Names {
        contract: format_ident!("{}Contract", ident),
        client: format_ident!("{}Client", ident),
        server: format_ident!("{}Server", ident),
    }
}

fn channel_const(method: &Method) -> Ident {
    format_ident!(
        "{}",
        names::screaming_snake_case(&method.ident().to_string())
    )
}

fn doc_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("doc")).collect()
}

/// The trait itself, with each `async fn` turned into a method returning a
/// `Send` future, so that main can run handlers on any worker thread.
fn expand_trait(service: &Service) -> TokenStream {
    let rt = rt();
    let mut item = service.item.clone();
    item.colon_token.get_or_insert_with(Default::default);
    let bounds: [TypeParamBound; 3] = [
        syn::parse_quote!(::core::marker::Send),
        syn::parse_quote!(::core::marker::Sync),
        syn::parse_quote!('static),
    ];
    item.supertraits.extend(bounds);
    for (trait_item, method) in item.items.iter_mut().zip(&service.methods) {
        let syn::TraitItem::Fn(f) = trait_item else {
            continue;
        };
        let ret = match &f.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => ty.to_token_stream(),
        };
        f.sig.asyncness = None;
        f.sig.output = syn::parse_quote!(
            -> impl #rt::Future<Output = #ret> + ::core::marker::Send
        );
        if let Some(body) = f.default.take() {
            f.default = Some(syn::parse_quote!({ async move #body }));
        }
        let channel = service.channel(method);
        let kind = match method.kind {
            Kind::Invoke => "request/reply",
            Kind::Send => "fire-and-forget",
        };
        let note = format!(" IPC channel `{channel}` ({kind}).");
        let has_docs = f.attrs.iter().any(|a| a.path().is_ident("doc"));
        if has_docs {
            f.attrs.push(syn::parse_quote!(#[doc = ""]));
        }
        f.attrs.push(syn::parse_quote!(#[doc = #note]));
    }
    item.into_token_stream()
}

/// A type name as it appears in the descriptor: the user's tokens with
/// insignificant spaces removed (`Vec<u8>`, `Result<Note, NotesError>`).
fn type_name(ty: &Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last().unwrap_or(' ');
            let next = chars.peek().copied().unwrap_or(' ');
            let word = |c: char| c.is_alphanumeric() || c == '_';
            if word(prev) && word(next) {
                out.push(' ');
            }
        } else {
            out.push(c);
            if c == ',' {
                out.push(' ');
            }
        }
    }
    out
}

/// `NotesContract`: channel constants and the descriptor.
fn expand_contract(service: &Service) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let Names {
        contract,
        client,
        server,
        ..
    } = names_of(service);
    let trait_ident = service.ident();
    let trait_name = trait_ident.to_string();
    let namespace = service.namespace_str();
    let consts = service.methods.iter().map(|m| {
        let name = channel_const(m);
        let channel = service.channel(m);
        let doc = format!("Channel of [`{trait_name}::{}`]: `{channel}`.", m.ident());
        quote! {
            #[doc = #doc]
            pub const #name: &'static str = #channel;
        }
    });
    let methods = service.methods.iter().map(|m| {
        let name = m.ident().to_string();
        let channel = service.channel(m);
        let kind = match m.kind {
            Kind::Invoke => quote!(#rt::MethodKind::Invoke),
            Kind::Send => quote!(#rt::MethodKind::Send),
        };
        let args = m.args.iter().map(|a| {
            let n = a.ident.to_string();
            let t = type_name(&a.ty);
            quote!(#rt::ArgDescriptor { name: #n, ty: #t })
        });
        let (output, error) = match &m.output {
            Output::Unit => ("()".to_string(), quote!(::core::option::Option::None)),
            Output::Value(t) => (type_name(t), quote!(::core::option::Option::None)),
            Output::Fallible { ok, err } => {
                let e = type_name(err);
                (type_name(ok), quote!(::core::option::Option::Some(#e)))
            }
        };
        quote! {
            #rt::MethodDescriptor {
                name: #name,
                channel: #channel,
                kind: #kind,
                args: &[#(#args),*],
                output: #output,
                error: #error,
            }
        }
    });
    let doc = format!(
        "Channel names and contract descriptor of [`{trait_name}`] (namespace `{namespace}`).\n\n\
         Generated by `#[service]`; see also [`{client}`] (renderer side) and [`{server}`] (main side)."
    );
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Copy)]
        #vis struct #contract;

        impl #contract {
            #(#consts)*
        }

        impl #rt::Service for #contract {
            const DESCRIPTOR: &'static #rt::ServiceDescriptor = &#rt::ServiceDescriptor {
                name: #trait_name,
                namespace: #namespace,
                methods: &[#(#methods),*],
            };
            const FINGERPRINT: u64 = #rt::service_fingerprint(<Self as #rt::Service>::DESCRIPTOR);
        }
    }
}

/// `NotesClient`: the renderer-side stub, one typed async method per channel.
fn expand_client(service: &Service) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let Names {
        contract, client, ..
    } = names_of(service);
    let trait_name = service.ident().to_string();
    let methods = service.methods.iter().map(|m| {
        let ident = m.ident();
        let docs = doc_attrs(&m.item.attrs);
        let konst = channel_const(m);
        let arg_idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let channel = service.channel(m);
        let (ret, body) = match (&m.output, m.kind) {
            (_, Kind::Send) => (
                quote!(::core::result::Result<(), #rt::IpcError>),
                quote!(self.core.send(#contract::#konst, &(#(#arg_idents,)*)).await),
            ),
            (Output::Unit, Kind::Invoke) => (
                quote!(::core::result::Result<(), #rt::IpcError>),
                quote!(self.core.invoke::<_, ()>(#contract::#konst, &(#(#arg_idents,)*)).await),
            ),
            (Output::Value(t), Kind::Invoke) => (
                quote!(::core::result::Result<#t, #rt::IpcError>),
                quote!(self.core.invoke::<_, #t>(#contract::#konst, &(#(#arg_idents,)*)).await),
            ),
            (Output::Fallible { ok, err }, Kind::Invoke) => (
                quote!(::core::result::Result<#ok, #rt::CallError<#err>>),
                quote!(self.core.invoke_fallible::<_, #ok, #err>(#contract::#konst, &(#(#arg_idents,)*)).await),
            ),
        };
        let what = match m.kind {
            Kind::Invoke => format!("Calls `{channel}` and waits for the reply."),
            Kind::Send => format!(
                "Sends a message on `{channel}` without waiting for it to be handled; messages from one connection are handled in the order sent."
            ),
        };
        let spacer = if docs.is_empty() { quote!() } else { quote!(#[doc = ""]) };
        quote! {
            #(#docs)*
            #spacer
            #[doc = #what]
            pub async fn #ident(&self, #(#arg_idents: #arg_tys),*) -> #ret {
                #body
            }
        }
    });
    let doc = format!(
        "Renderer-side client of [`{trait_name}`]: each method sends a frame to main and returns its typed reply.\n\n\
         Generated by `#[service]`. Cheap to clone; clones share one connection."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #client {
            core: #rt::ClientCore,
        }

        impl #client {
            /// Creates a client that calls over `connection`.
            pub fn new(connection: &#rt::Connection) -> Self {
                Self { core: #rt::ClientCore::new(connection) }
            }

            /// Returns a client whose calls time out after `timeout` instead of
            /// the connection's default.
            pub fn with_timeout(&self, timeout: #rt::Duration) -> Self {
                Self { core: self.core.with_timeout(timeout) }
            }

            #(#methods)*
        }
    }
}

/// `NotesServer`: main-side dispatch from a channel to a handler method.
fn expand_server(service: &Service) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let Names {
        contract, server, ..
    } = names_of(service);
    let trait_ident = service.ident();
    let arms = service.methods.iter().enumerate().map(|(index, m)| {
        let ident = m.ident();
        let arg_idents: Vec<Ident> = m
            .args
            .iter()
            .map(|a| format_ident!("__ipc_arg_{}", a.ident))
            .collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let call = quote!(__ipc_handler.#ident(#(#arg_idents),*).await);
        let outcome = match &m.output {
            Output::Unit => quote!({ #call; #rt::Outcome::unit() }),
            Output::Value(_) => quote!(#rt::Outcome::from_value(&#call)),
            Output::Fallible { .. } => quote!(#rt::Outcome::from_result(#call)),
        };
        quote! {
            #index => #rt::Box::pin(async move {
                let (#(#arg_idents,)*): (#(#arg_tys,)*) = match #rt::decode_args(&__ipc_payload) {
                    ::core::result::Result::Ok(args) => args,
                    ::core::result::Result::Err(outcome) => return outcome,
                };
                #outcome
            }),
        }
    });
    let trait_name = trait_ident.to_string();
    let doc = format!(
        "Main-side adapter that serves [`{trait_name}`] with a handler value: \
         register it with `MainBuilder::service`.\n\nGenerated by `#[service]`."
    );
    quote! {
        #[doc = #doc]
        #vis struct #server<H> {
            handler: #rt::Arc<H>,
        }

        impl<H: #trait_ident> #server<H> {
            /// Serves the trait's channels with `handler`.
            pub fn new(handler: H) -> Self {
                Self { handler: #rt::Arc::new(handler) }
            }

            /// Serves the trait's channels with a handler that is shared with
            /// other code.
            pub fn from_arc(handler: #rt::Arc<H>) -> Self {
                Self { handler }
            }
        }

        impl<H: #trait_ident> #rt::Dispatch for #server<H> {
            fn descriptor(&self) -> &'static #rt::ServiceDescriptor {
                <#contract as #rt::Service>::DESCRIPTOR
            }

            fn call(
                &self,
                method: usize,
                __ipc_payload: #rt::Bytes,
            ) -> #rt::BoxFuture<'static, #rt::Outcome> {
                let __ipc_handler = #rt::Arc::clone(&self.handler);
                match method {
                    #(#arms)*
                    _ => #rt::Box::pin(async move { #rt::Outcome::no_such_method(method) }),
                }
            }
        }
    }
}

/// One check per argument and return type, spanned on the user's type, so
/// that a type that cannot cross the wire is reported where it was written.
fn expand_type_checks(service: &Service) -> TokenStream {
    let rt = rt();
    let checks = service.methods.iter().flat_map(|m| {
        let args = m.args.iter().map(|a| &a.ty);
        let outs: Vec<&Type> = match &m.output {
            Output::Unit => vec![],
            Output::Value(t) => vec![t],
            Output::Fallible { ok, err } => vec![ok, err],
        };
        args.chain(outs)
            .map(|ty| quote_spanned!(ty.span()=> #rt::assert_wire_type::<#ty>();))
            .collect::<Vec<_>>()
    });
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn __ipc_check_wire_types() {
                #(#checks)*
            }
        };
    }
}
