//! Code generation from a validated model.
//!
//! Generated code reaches the runtime only through
//! `::ipc_runtime::__private` (under the name the user's crate gives the
//! runtime, see `krate.rs`), so the runtime can reorganise its modules
//! without breaking expansions, and never depends on this crate's features.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::{
    ext::IdentExt as _, spanned::Spanned, Attribute, Item, ReturnType, Type, TypeParamBound,
};

use crate::{
    ast::{Flavor, Kind, Method, Output, Service},
    attr,
    ctxt::Ctxt,
    fallback, krate, names, valid,
};

/// Entry point of `#[service]`.
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    run(Flavor::Service, args, input)
}

/// Entry point of `#[events]`.
pub fn events(args: TokenStream, input: TokenStream) -> TokenStream {
    run(Flavor::Events, args, input)
}

fn run(flavor: Flavor, args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Trait(item)) => item,
        Ok(other) => return fallback::passthrough(not_a_trait(flavor, &other), input),
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                format!("#[{}] goes on a trait: {}", flavor.attr(), example(flavor)),
            );
            return fallback::passthrough(e, input);
        }
    };
    let mut cx = Ctxt::default();
    let mut attrs = attr::container(&mut cx, flavor.attr(), args);
    let runtime = attrs.runtime.take();
    let model = Service::from_syn(&mut cx, flavor, attrs, item);
    valid::check(&mut cx, &model);
    krate::with_runtime(runtime, || match (cx.check(), flavor) {
        (Ok(()), Flavor::Service) => expand_service(&model),
        (Ok(()), Flavor::Events) => expand_events(&model),
        (Err(e), _) => fallback::service(e, &model),
    })
}

/// A one-line example of a trait the macro accepts, for messages.
fn example(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Service => {
            "`#[service(namespace = \"notes\")] pub trait Notes { async fn get(&self, id: u64) -> Note; }`"
        }
        Flavor::Events => {
            "`#[events(namespace = \"notes\")] pub trait NotesEvents { fn changed(&self, note: Note); }`"
        }
    }
}

/// The error for `#[service]` or `#[events]` on an item that is not a
/// trait, pointing at the item's keyword and name.
fn not_a_trait(flavor: Flavor, item: &Item) -> syn::Error {
    let attr = flavor.attr();
    let (what, tokens) = match item {
        Item::Impl(i) => {
            let self_ty = &i.self_ty;
            let trait_name = i
                .trait_
                .as_ref()
                .and_then(|(_, path, _)| path.segments.last())
                .map(|s| s.ident.to_string());
            if let Some(name) = trait_name {
                return syn::Error::new_spanned(
                    quote!(#self_ty),
                    format!(
                        "#[{attr}] goes on the trait, not on its impl: move it to `pub trait {name} {{ ... }}`; \
                         the impl needs no attribute"
                    ),
                );
            }
            ("an impl block", quote!(#self_ty))
        }
        Item::Struct(i) => ("a struct", {
            let (struct_token, ident) = (&i.struct_token, &i.ident);
            quote!(#struct_token #ident)
        }),
        Item::Enum(i) => ("an enum", {
            let (enum_token, ident) = (&i.enum_token, &i.ident);
            quote!(#enum_token #ident)
        }),
        Item::Fn(i) => ("a function", {
            let (fn_token, ident) = (&i.sig.fn_token, &i.sig.ident);
            quote!(#fn_token #ident)
        }),
        Item::Mod(i) => ("a module", {
            let (mod_token, ident) = (&i.mod_token, &i.ident);
            quote!(#mod_token #ident)
        }),
        other => ("this item", quote!(#other)),
    };
    let channels = match flavor {
        Flavor::Service => "the channels",
        Flavor::Events => "the events",
    };
    syn::Error::new_spanned(
        tokens,
        format!(
            "#[{attr}] goes on a trait, not on {what}: declare {channels} as a trait, like {}",
            example(flavor)
        ),
    )
}

/// The `__private` path that generated code uses for every runtime item.
pub(crate) fn rt() -> TokenStream {
    rt_at(Span::call_site())
}

/// [`rt`], spanned at `span`.
fn rt_at(span: Span) -> TokenStream {
    let root = krate::root(span);
    quote_spanned!(span=> #root::__private)
}

fn expand_service(service: &Service) -> TokenStream {
    let trait_def = expand_trait(service);
    let contract = expand_contract(service, true);
    let client = expand_client(service);
    let server = expand_server(service);
    let module = expand_methods_module(service);
    let checks = expand_type_checks(service.methods.iter().flat_map(Method::wire_types));
    let generated = mark_generated(
        service,
        quote! {
            #contract
            #client
            #server
            #module
            #checks
        },
    );
    quote! {
        #trait_def
        #generated
    }
}

fn expand_events(service: &Service) -> TokenStream {
    let trait_def = expand_events_trait(service);
    let contract = expand_contract(service, true);
    let emitter = expand_emitter(service);
    let listener = expand_listener(service);
    let module = expand_methods_module(service);
    let checks = expand_type_checks(service.methods.iter().flat_map(Method::wire_types));
    let generated = mark_generated(
        service,
        quote! {
            #contract
            #emitter
            #listener
            #module
            #checks
        },
    );
    quote! {
        #trait_def
        #generated
    }
}

/// Gives the items generated beside a trait what the trait's own
/// attributes say of lints: its `allow`s (and `expect`s, as `allow`s: a
/// copy would not always fulfil them) cover them too; a deprecated trait's
/// types are deprecated with it, so that the code using them is warned;
/// and the generated items' own uses of a deprecated trait or type do not
/// warn (declaring a deprecated contract is not a use of it).
fn mark_generated(service: &Service, items: TokenStream) -> TokenStream {
    let Ok(mut file) = syn::parse2::<syn::File>(items.clone()) else {
        return items;
    };
    let lints: Vec<Attribute> = service
        .item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("allow") || a.path().is_ident("expect"))
        .map(as_allow)
        .collect();
    let deprecated = service
        .item
        .attrs
        .iter()
        .find(|a| a.path().is_ident("deprecated"));
    for item in &mut file.items {
        let (attrs, is_type) = match item {
            Item::Struct(s) => (&mut s.attrs, true),
            Item::Impl(i) => (&mut i.attrs, false),
            Item::Mod(m) => (&mut m.attrs, false),
            Item::Const(c) => (&mut c.attrs, false),
            _ => continue,
        };
        attrs.extend(lints.iter().cloned());
        match deprecated {
            Some(deprecated) if is_type => attrs.push(deprecated.clone()),
            _ => attrs.push(syn::parse_quote!(#[allow(deprecated)])),
        }
    }
    file.into_token_stream()
}

/// `#[expect(…)]` as `#[allow(…)]`; any other attribute as it is.
fn as_allow(attr: &Attribute) -> Attribute {
    let mut attr = attr.clone();
    attr::expect_as_allow(&mut attr.meta);
    attr
}

/// The module `expose!` reaches the trait's items through (`notes_methods`
/// for `Notes`): the renderer-side type as `Client<W>`, the descriptor as
/// `CONTRACT`, and one marker type per method or event carrying its
/// `CHANNEL`, named after it, for the `Allows<marker>` whitelist bounds.
pub(crate) fn expand_methods_module(service: &Service) -> TokenStream {
    let vis = &service.item.vis;
    let module = names::methods_module(service.ident());
    let (runtime_import, root) =
        krate::root_for_child_module(&format_ident!("__ipc_runtime_of_{}", module));
    let rt = quote!(#root::__private);
    let Names {
        contract, client, ..
    } = names_of(service);
    let trait_name = service.ident().to_string();
    let markers = service.methods.iter().map(|m| {
        let ident = m.ident();
        let channel = service.channel(m);
        let doc = format!(
            "Marks [`{trait_name}::{ident}`](super::{trait_name}::{ident}) (channel `{channel}`) in `expose!` whitelists."
        );
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, Copy)]
            pub struct #ident;

            impl #ident {
                /// The channel.
                pub const CHANNEL: &'static ::core::primitive::str = #channel;
                /// `expose!` may list it.
                #[doc(hidden)]
                pub const LISTED: () = ();
            }
        }
    });
    // A renamed method listed by its channel's name (`{ whoami }` for
    // `#[ipc(rename = "whoami")] fn current_user`): a stand-in marker
    // whose `LISTED` fails, when `expose!` names it, with what to write.
    let mut taken: std::collections::HashSet<String> = service
        .methods
        .iter()
        .map(|m| m.ident().unraw().to_string())
        .collect();
    let renamed = service.methods.iter().filter_map(|m| {
        let rename = m.rename.as_ref()?.value().replace('-', "_");
        let alias = match syn::parse_str::<Ident>(&rename) {
            Ok(alias) => alias,
            // A keyword, listed as `r#type`.
            Err(_) => {
                syn::parse_str::<Ident>(&format!("r#{rename}")).ok()?;
                Ident::new_raw(&rename, Span::call_site())
            }
        };
        if !taken.insert(rename.clone()) {
            return None;
        }
        let rust_name = m.ident().unraw().to_string();
        let message = format!(
            "`{trait_name}` has no method `{rename}`: `{}` is the channel of `{trait_name}::{rust_name}`; list the method by its Rust name, `{rust_name}`",
            service.channel(m)
        );
        Some(quote! {
            #[doc(hidden)]
            #[derive(Debug, Clone, Copy)]
            pub struct #alias;

            impl #alias {
                #[doc(hidden)]
                pub const LISTED: () = ::core::panic!(#message);
            }
        })
    });
    let renamed: Vec<TokenStream> = renamed.collect();
    let doc = format!(
        "The items of [`{trait_name}`] that `expose!` uses: the renderer-side type, the descriptor and one marker per method. Generated by `#[{}]`.",
        service.flavor.attr()
    );
    // The module reaches the contract beside it through this alias, so
    // that a trait declared inside a function body (where the module
    // cannot see the items beside it) gets an error naming the alias, which
    // says what to do, first. (`Client` names the client type itself, for
    // its docs and so that `W` stays a parameter of it; there it adds
    // "cannot find type `NotesClient`".)
    let contract_alias = format_ident!(
        "{}_must_be_declared_in_a_module_not_inside_a_function_body",
        service.ident().unraw(),
        span = service.ident().span()
    );
    quote! {
        #runtime_import

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, deprecated)]
        #vis type #contract_alias = #contract;

        #[doc = #doc]
        #[allow(non_camel_case_types, non_snake_case, dead_code)]
        #vis mod #module {
            /// The contract's descriptor.
            pub const CONTRACT: &'static #rt::ServiceDescriptor =
                <super::#contract_alias as #rt::Service>::DESCRIPTOR;

            /// The renderer-side type, with whitelist `W`.
            pub type Client<W> = super::#client<W>;

            #(#markers)*

            #(#renamed)*
        }
    }
}

/// Item names derived from the trait's name.
pub(crate) struct Names {
    pub contract: Ident,
    /// The renderer-side type: `NotesClient`, or `NotesEventsListener` for
    /// an events trait.
    pub client: Ident,
    /// The main-side type: `NotesServer`, or `NotesEventsEmitter`.
    pub server: Ident,
}

pub(crate) fn names_of(service: &Service) -> Names {
    let ident = service.ident();
    let (client, server) = match service.flavor {
        Flavor::Service => ("Client", "Server"),
        Flavor::Events => ("Listener", "Emitter"),
    };
    Names {
        contract: format_ident!("{}Contract", ident),
        client: format_ident!("{}{}", ident, client),
        server: format_ident!("{}{}", ident, server),
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

/// A method's lint levels and `#[deprecated]`, which its generated copies
/// (client, listener and emitter methods) carry too: a deprecated method
/// warns where a renderer calls it, and an `allow` covers the copies.
/// (`#[expect]` is carried as `#[allow]`: a copy would not always fulfil
/// it; a `#[cfg_attr]` adding lint levels is carried with its condition.)
fn lint_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter_map(|a| {
            if attr::is_lint_level(a.path()) {
                return Some(as_allow(a));
            }
            // `#[cfg_attr(predicate, allow(..))]`: the same, conditionally.
            if !a.path().is_ident("cfg_attr") {
                return None;
            }
            let (predicate, lints) = attr::cfg_attr_lints(a)?;
            (!lints.is_empty()).then(|| syn::parse_quote!(#[cfg_attr(#predicate, #(#lints),*)]))
        })
        .collect()
}

/// The trait itself, with each `async fn` turned into a method returning a
/// `Send` future, so that main can run handlers on any worker thread.
fn expand_trait(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    allow_unused(&mut item);
    item.colon_token.get_or_insert_with(Default::default);
    let bounds: [TypeParamBound; 3] = [
        syn::parse_quote!(::core::marker::Send),
        syn::parse_quote!(::core::marker::Sync),
        syn::parse_quote!('static),
    ];
    // Added even when the user wrote them: a bare `Send` may be a trait of
    // the user's own. Repeating the real one is harmless, but clippy's
    // `trait_duplication_in_bounds` would say so at the attribute.
    item.supertraits.extend(bounds);
    item.attrs
        .push(syn::parse_quote!(#[allow(clippy::trait_duplication_in_bounds)]));
    for (trait_item, method) in item.items.iter_mut().zip(&service.methods) {
        let syn::TraitItem::Fn(f) = trait_item else {
            continue;
        };
        // Spanned on the user's return type, so that a handler whose
        // future is not `Send`, resolves to another type or is no future at
        // all (no `async`) is told about "this bound" on the trait's method
        // rather than on the attribute.
        let (ret, span) = match &f.sig.output {
            ReturnType::Default => (quote!(()), f.sig.ident.span()),
            ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
        };
        let rt_ret = rt_at(span);
        f.sig.asyncness = None;
        f.sig.output = syn::parse_quote_spanned!(span=>
            -> impl #rt_ret::Future<Output = #ret> + ::core::marker::Send
        );
        if let Some(body) = f.default.take() {
            // The body's value is bound to the declared return type inside
            // the block, so that a mistake in it is reported where it is
            // (`expected String, found u64` on the value, with rustc's
            // suggestions), as for a plain `async fn`, rather than on the
            // generated future.
            //
            // The value is returned by a statement, not as the block's tail:
            // a body that never reaches its end (`todo!()`) would make a
            // tail unreachable, a warning of ours in the user's build. The
            // user's own unreachable code inside the body is still warned.
            let value = Ident::new("__ipc_value", Span::mixed_site());
            let body_span = body.span();
            f.default = Some(syn::parse_quote_spanned!(body_span=> {
                async move {
                    let #value: #ret = #body;
                    #[allow(unreachable_code)]
                    return #value;
                }
            }));
            f.attrs.push(syn::parse_quote!(
                #[allow(clippy::needless_return, clippy::let_and_return)]
            ));
        }
        let channel = service.channel(method);
        let kind = match method.kind {
            Kind::Invoke => "request/reply",
            Kind::Send => "fire-and-forget",
            Kind::Event => "event pushed by main",
        };
        let note = format!(" IPC channel `{channel}` ({kind}).");
        add_channel_note(f, &note);
    }
    item.into_token_stream()
}

/// An events trait as written (it declares the events; the generated
/// emitter implements it), with each method's channel in its docs.
fn expand_events_trait(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    allow_unused(&mut item);
    for (trait_item, method) in item.items.iter_mut().zip(&service.methods) {
        let syn::TraitItem::Fn(f) = trait_item else {
            continue;
        };
        let note = format!(" IPC event `{}` (pushed by main).", service.channel(method));
        add_channel_note(f, &note);
    }
    item.into_token_stream()
}

/// Appends `note` (the method's channel) to a trait method's docs, if it
/// has any: a method the user left undocumented stays so, so that
/// `missing_docs` still reports it.
fn add_channel_note(f: &mut syn::TraitItemFn, note: &str) {
    if f.attrs.iter().any(|a| a.path().is_ident("doc")) {
        f.attrs.push(syn::parse_quote!(#[doc = ""]));
        f.attrs.push(syn::parse_quote!(#[doc = #note]));
    }
}

/// A contract trait is a declaration: a program uses it through the types
/// generated from it, and a binary that never names the trait itself (a
/// renderer that only calls, a main that never listens) should not be
/// told that it is unused.
fn allow_unused(item: &mut syn::ItemTrait) {
    item.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
}

/// `NotesEventsEmitter`: pushes events from main to a target. Each event is
/// an inherent method returning how many renderers it was queued for, and
/// the emitter implements the trait too, so main-side code can take any
/// `impl NotesEvents`.
fn expand_emitter(service: &Service) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let Names {
        contract,
        server: emitter,
        ..
    } = names_of(service);
    let trait_ident = service.ident();
    let trait_name = trait_ident.to_string();
    let methods = service.methods.iter().map(|m| {
        let ident = m.ident();
        let docs = doc_attrs(&m.item.attrs);
        let lints = lint_attrs(&m.item.attrs);
        let konst = channel_const(m);
        let channel = service.channel(m);
        let arg_idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let what = format!(
            "Pushes `{channel}` to every renderer of the target that listens to it; returns how many it was queued for. \
             A listening renderer it was not queued for is named in a `tracing` event: if the event is \
             larger than that renderer's `max_frame_size`, a warning the first time for that renderer and a debug event after; \
             a debug event if its queue is full under `SlowConsumer::DropEvents`; \
             a value that cannot be encoded is logged as an error and reaches nobody."
        );
        quote! {
            #(#docs)*
            #[doc = ""]
            #[doc = #what]
            #(#lints)*
            // The trait's method has the same arguments: reported there.
            #[allow(clippy::too_many_arguments)]
            pub fn #ident(&self, #(#arg_idents: #arg_tys),*) -> ::core::primitive::usize {
                #[allow(unused_imports)]
                use #rt::probe::{Emit as _, EmitInert as _};
                (&&#rt::probe::Probe::<(#(#arg_tys,)*)>::NEW)
                    .emit(&self.core, #contract::#konst, (#(#arg_idents,)*))
            }
        }
    });
    let impls = service.methods.iter().map(|m| {
        let ident = m.ident();
        let arg_idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        quote! {
            fn #ident(&self, #(#arg_idents: #arg_tys),*) {
                #emitter::#ident(self, #(#arg_idents),*);
            }
        }
    });
    let doc = format!(
        "Main-side emitter of [`{trait_name}`]: pushes events to one renderer, a group or all \
         (`Target`), and only to those that listen.\n\nGenerated by `#[events]`."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #emitter {
            core: #rt::EmitterCore,
        }

        impl #emitter {
            /// An emitter pushing through `main` to `target` (a `Target`,
            /// or a `RendererId` for one renderer).
            pub fn new(main: &#rt::Main, target: impl ::core::convert::Into<#rt::Target>) -> Self {
                Self { core: #rt::EmitterCore::new(main, target) }
            }

            #(#methods)*
        }

        // Forwards to the methods above, deprecated or not.
        #[allow(deprecated)]
        impl #trait_ident for #emitter {
            #(#impls)*
        }
    }
}

/// `NotesEventsListener<W>`: one `on_<event>` method per event.
fn expand_listener(service: &Service) -> TokenStream {
    let rt = rt();
    let contract = names_of(service).contract;
    let methods = service.methods.iter().map(|m| {
        let on = names::listener_method("on", m.ident());
        let docs = client_docs(service, m);
        let konst = channel_const(m);
        let arg_idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let allows = allows_bound(service, m);
        // The generated locals are hygienic, so that an event argument
        // called `f` or `core` does not shadow them.
        let f = Ident::new("__ipc_f", Span::mixed_site());
        let core = Ident::new("__ipc_core", Span::mixed_site());
        let tx = Ident::new("__ipc_tx", Span::mixed_site());
        let rx = Ident::new("__ipc_rx", Span::mixed_site());
        let subscribing = Ident::new("__ipc_subscribing", Span::mixed_site());
        // `stream_<event>`: the same events as values to read, one
        // argument as itself, several as a tuple.
        let stream = names::listener_method("stream", m.ident());
        let stream_docs = stream_docs(service, m);
        let (item, value) = match (&arg_tys[..], &arg_idents[..]) {
            ([ty], [arg]) => (quote!(#ty), quote!(#arg)),
            _ => (quote!((#(#arg_tys),*)), quote!((#(#arg_idents),*))),
        };
        quote! {
            #docs
            pub fn #on(
                &self,
                f: impl ::core::ops::FnMut(#(#arg_tys),*) + ::core::marker::Send + 'static,
            ) -> #rt::BoxFuture<'_, ::core::result::Result<#rt::Subscription, #rt::IpcError>> #allows {
                let mut #f = f;
                let #core = &self.core;
                #rt::Box::pin(async move {
                    #[allow(unused_imports)]
                    use #rt::probe::{Listen as _, ListenInert as _};
                    (&&#rt::probe::Probe::<(#(#arg_tys,)*)>::NEW)
                        .on(#core, #contract::#konst, move |(#(#arg_idents,)*): (#(#arg_tys,)*)| #f(#(#arg_idents),*))
                        .await
                })
            }

            #stream_docs
            pub fn #stream(
                &self,
            ) -> #rt::BoxFuture<'_, ::core::result::Result<#rt::EventStream<#item>, #rt::IpcError>> #allows {
                let (mut #tx, #rx) = #rt::EventStream::<#item>::__channel(#contract::#konst);
                // Deprecated with the event, if it is: this is no use of it.
                #[allow(deprecated)]
                let #subscribing = self.#on(move |#(#arg_idents),*| {
                    // The stream gone (its guard with it), nobody reads.
                    #tx.send(#value);
                });
                #rt::Box::pin(async move {
                    ::core::result::Result::Ok(#rt::EventStream::__new(#rx, #subscribing.await?))
                })
            }
        }
    });
    client_shell(service, quote!(#(#methods)*))
}

/// The doc lines of a listener's `stream_<event>` method.
fn stream_docs(service: &Service, method: &Method) -> TokenStream {
    let docs = doc_attrs(&method.item.attrs);
    let spacer = if docs.is_empty() {
        quote!()
    } else {
        quote!(#[doc = ""])
    };
    let lints = lint_attrs(&method.item.attrs);
    let channel = service.channel(method);
    let on = names::listener_method("on", method.ident());
    let what = match method.args.len() {
        1 => "each event's argument",
        0 => "`()` for each event",
        _ => "each event's arguments as a tuple",
    };
    let doc = format!(
        "Listens to `{channel}` as a stream to read at your own pace: it yields {what}, in the order main emitted them, \
         and `None` once the connection has closed and every event received before has been read. Dropping the stream \
         unsubscribes. Returns once main has recorded the subscription.\n\n\
         Events wait in the stream until read, without limit: read it or drop it (see [`EventStream`]({root}::EventStream)). \
         For a callback instead, see [`{on}`](Self::{on}).",
        root = krate::doc_root(),
    );
    quote! {
        #(#docs)*
        #spacer
        #[doc = #doc]
        #(#lints)*
    }
}

/// A type name as it appears in the descriptor: the user's tokens with
/// insignificant spaces removed (`Vec<u8>`, `Result<Note, NotesError>`).
pub(crate) fn type_name(ty: &Type) -> String {
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

/// `NotesContract`: channel constants and the descriptor. With `traced`,
/// the descriptor traces the methods' types for the handshake; without
/// (the stand-in of a trait with errors, whose types may not even be
/// valid), it names no type.
pub(crate) fn expand_contract(service: &Service, traced: bool) -> TokenStream {
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
            pub const #name: &'static ::core::primitive::str = #channel;
        }
    });
    let methods = service.methods.iter().map(|m| {
        // Without `r#`: `expose!` finds methods by name, written either way.
        let name = m.ident().unraw().to_string();
        let channel = service.channel(m);
        let kind = match m.kind {
            Kind::Invoke => quote!(#rt::MethodKind::Invoke),
            Kind::Send => quote!(#rt::MethodKind::Send),
            Kind::Event => quote!(#rt::MethodKind::Event),
        };
        let args = m.args.iter().map(|a| {
            let n = a.ident.unraw().to_string();
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
        // The types traced for the handshake, each argument on its own,
        // through a probe (an inert one for types without serde's traits,
        // which fail the build on their own `IpcType` check).
        let arg_shapes = m.args.iter().map(|a| {
            let (ty, name) = (&a.ty, type_name(&a.ty));
            quote!(((&&#rt::probe::Probe::<#ty>::NEW).__ipc_shape(), #name))
        });
        let (ok_ty, err_ty) = match (&m.output, m.kind) {
            (Output::Value(t), Kind::Invoke) => (quote!(#t), quote!(())),
            (Output::Fallible { ok, err }, Kind::Invoke) => (quote!(#ok), quote!(#err)),
            _ => (quote!(()), quote!(())),
        };
        let shapes = if traced {
            quote! {
                || {
                    // Names no user item could take by accident.
                    static __IPC_SHAPES: #rt::OnceLock<#rt::WireShapes> = #rt::OnceLock::new();
                    *__IPC_SHAPES.get_or_init(|| {
                        #[allow(unused_imports)]
                        use #rt::probe::{Shapes as _, ShapesInert as _};
                        #rt::WireShapes {
                            args: ::core::option::Option::Some(#rt::WireShapes::args_of(&[#(#arg_shapes),*])),
                            output: (&&#rt::probe::Probe::<#ok_ty>::NEW).__ipc_shape(),
                            error: (&&#rt::probe::Probe::<#err_ty>::NEW).__ipc_shape(),
                        }
                    })
                }
            }
        } else {
            quote!(#rt::WireShapes::untraced)
        };
        let arg_types = m.args.iter().map(|a| &a.ty);
        let describe = if traced {
            quote! {
                || {
                    // Described once per process, as the shapes are traced
                    // once: a renderer that keeps connecting with another
                    // contract costs main a copy, not a trace.
                    static __IPC_DESCRIPTION: #rt::OnceLock<#rt::WireDescription> = #rt::OnceLock::new();
                    ::core::clone::Clone::clone(__IPC_DESCRIPTION.get_or_init(|| {
                        #[allow(unused_imports)]
                        use #rt::probe::{Describe as _, DescribeInert as _};
                        #rt::WireDescription::__of(
                            ::std::vec![#((&&#rt::probe::Probe::<#arg_types>::NEW).__ipc_describe()),*],
                            (&&#rt::probe::Probe::<#ok_ty>::NEW).__ipc_describe(),
                            (&&#rt::probe::Probe::<#err_ty>::NEW).__ipc_describe(),
                        )
                    }))
                }
            }
        } else {
            quote!(#rt::WireDescription::none)
        };
        quote! {
            #rt::MethodDescriptor {
                name: #name,
                channel: #channel,
                kind: #kind,
                args: &[#(#args),*],
                output: #output,
                error: #error,
                shapes: #shapes,
                describe: #describe,
            }
        }
    });
    let doc = format!(
        "Channel names and contract descriptor of [`{trait_name}`] (namespace `{namespace}`).\n\n\
         Generated by `#[{}]`; see also [`{client}`] (renderer side) and [`{server}`] (main side).",
        service.flavor.attr()
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
        }
    }
}

/// The client method's return type: the handler's result wrapped with the
/// runtime's error (`Result<T, IpcError>`, or `Result<T, CallError<E>>`
/// for a method returning `Result<T, E>`).
pub(crate) fn client_return_type(method: &Method) -> TokenStream {
    let rt = rt();
    match (&method.output, method.kind) {
        (_, Kind::Send) | (Output::Unit, Kind::Invoke) => {
            quote!(::core::result::Result<(), #rt::IpcError>)
        }
        (_, Kind::Event) => quote!(::core::result::Result<#rt::Subscription, #rt::IpcError>),
        (Output::Value(t), Kind::Invoke) => quote!(::core::result::Result<#t, #rt::IpcError>),
        (Output::Fallible { ok, err }, Kind::Invoke) => {
            quote!(::core::result::Result<#ok, #rt::CallError<#err>>)
        }
    }
}

/// The doc lines of a client method (the user's, then what the call does)
/// and the lint attributes it carries over from the trait method.
pub(crate) fn client_docs(service: &Service, method: &Method) -> TokenStream {
    let docs = doc_attrs(&method.item.attrs);
    let lints = lint_attrs(&method.item.attrs);
    let channel = service.channel(method);
    let mut what = match method.kind {
        Kind::Invoke => format!("Calls `{channel}` and waits for the reply."),
        Kind::Send => format!(
            "Sends a message on `{channel}` without waiting for it to be handled; messages from one connection are handled in the order sent.\n\n\
             Returns once the message is queued. While the connection's outgoing queue is full (main is not reading it) it waits \
             for room, for at most the client's timeout (`with_timeout`, or the connection's `call_timeout`): then it fails with \
             `IpcError::SendTimeout` and nothing is sent. Dropping the connection, or returning from `main`, still writes what is queued \
             (as much as the socket takes at once, if the runtime is shutting down); `std::process::exit` does not. \
             To be sure a message was written before exiting, `flush().await` or `close().await` the API."
        ),
        Kind::Event => format!(
            "Calls `f` with each `{channel}` event, in the order main emitted them, until the returned guard is dropped \
             or the connection closes (dropping every handle of the API closes it: keep one while you listen). \
             Returns once main has recorded the subscription. `f` runs on the connection's event dispatcher: it must \
             return quickly and not block (hand the event to a channel or a task for longer work). \
             `f` returns nothing, so an `async` block is refused: for async work (such as calling main back when \
             an event arrives), `tokio::spawn` it from `f`, or loop over `{stream}()` to handle each event in \
             turn, in order.",
            stream = names::listener_method("stream", method.ident()),
        ),
    };
    if let Some(secs) = method.timeout_secs {
        what.push_str(&format!(
            "\n\nDeclared with `#[ipc(timeout_secs = {secs})]`: waits at most {secs} s, or the connection's \
             `call_timeout` if that is longer; a client given a timeout with `with_timeout` waits that long instead."
        ));
    }
    let spacer = if docs.is_empty() {
        quote!()
    } else {
        quote!(#[doc = ""])
    };
    quote! {
        #(#docs)*
        #spacer
        #[doc = #what]
        #(#lints)*
        // The trait's method has the same arguments: reported there.
        #[allow(clippy::too_many_arguments)]
    }
}

/// The `where` clause that makes a renderer-side method callable only
/// through an API whose whitelist `W` exposes it.
///
/// The methods that carry it return a boxed future instead of being
/// `async fn`s: an `async fn`'s future is an opaque type that inherits the
/// bound, so a call through an API that does not expose the method would
/// report the unmet bound three times (on the method's name, on the call
/// and on its `.await`). With a concrete return type it is reported once,
/// on the method's name. A call allocates anyway (its frame), so the box
/// costs little.
fn allows_bound(service: &Service, method: &Method) -> TokenStream {
    let marker = method.ident();
    // Spanned on the method's name, so that "required by this bound"
    // points at the method rather than at the attribute.
    let span = marker.span();
    let rt = rt_at(span);
    let mut module = names::methods_module(service.ident());
    module.set_span(span);
    let mut w = service.whitelist_param();
    w.set_span(span);
    quote_spanned!(span=> where #w: #rt::Allows<#module::#marker>)
}

/// The renderer-side type (`NotesClient<W>` or `NotesEventsListener<W>`),
/// its constructors and its documentation, around `methods`. `W` is the
/// whitelist: `Everything` for a client built straight from a connection,
/// or an `expose!` type, whose `Allows` impls decide which methods exist.
pub(crate) fn client_shell(service: &Service, methods: TokenStream) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let client = names_of(service).client;
    let trait_name = service.ident().to_string();
    // The runtime as this crate names it (renamed, or through a facade),
    // for the doc links.
    let whitelist = format!("{}::whitelist", krate::doc_root());
    // The methods' parameter; not `W` if a method uses a type called `W`.
    let w = service.whitelist_param();
    let (doc, core, extra) = match service.flavor {
        Flavor::Service => (
            format!(
                "Renderer-side client of [`{trait_name}`]: each method sends a frame to main and returns its typed reply.\n\n\
                 `W` is the whitelist (see [`whitelist`]({whitelist})): built with `new`, every method is available; as a field of an `expose!` type, \
                 only the methods it lists. Generated by `#[service]`. Cheap to clone; clones share one connection."
            ),
            quote!(#rt::ClientCore),
            quote! {
                /// Returns a client whose calls time out after `timeout` instead of
                /// the connection's default, and instead of the timeouts methods
                /// declare with `#[ipc(timeout_secs = N)]`. It bounds request/reply calls (the
                /// wait for an in-flight slot, for room to queue, and for the
                /// reply) and a `send`'s wait for room to queue (a `send`
                /// returns once queued). `Duration::MAX` waits as long as the
                /// connection lives.
                pub fn with_timeout(&self, timeout: #rt::Duration) -> Self {
                    Self { core: self.core.with_timeout(timeout), _whitelist: #rt::PhantomData }
                }
            },
        ),
        Flavor::Events => (
            format!(
                "Renderer-side listener of [`{trait_name}`]: each `on_…` method calls a closure with every event of that kind, \
                 and each `stream_…` method returns the events of that kind as a stream to read; dropping the returned guard \
                 or stream unsubscribes.\n\n\
                 `W` is the whitelist (see [`whitelist`]({whitelist})): built with `new`, every event is available; as a field of an `expose!` type, \
                 only the events it lists. Generated by `#[events]`."
            ),
            quote!(#rt::ListenerCore),
            quote!(),
        ),
    };
    quote! {
        #[doc = #doc]
        #vis struct #client<W = #rt::Everything> {
            core: #core,
            _whitelist: #rt::PhantomData<fn() -> W>,
        }

        impl<W> ::core::clone::Clone for #client<W> {
            fn clone(&self) -> Self {
                Self { core: self.core.clone(), _whitelist: #rt::PhantomData }
            }
        }

        impl<W> ::core::fmt::Debug for #client<W> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#client)).field("core", &self.core).finish()
            }
        }

        impl #client {
            /// Creates one over `connection`, with every method available.
            pub fn new(connection: &#rt::Connection) -> Self {
                Self::__new(connection)
            }
        }

        impl<#w> #client<#w> {
            /// Creates one with whitelist `W`; used by `expose!`.
            #[doc(hidden)]
            pub fn __new(connection: &#rt::Connection) -> Self {
                Self { core: <#core>::new(connection), _whitelist: #rt::PhantomData }
            }

            #extra

            #methods
        }
    }
}

/// `NotesClient`: the renderer-side stub, one typed async method per channel.
///
/// Each call goes through a `__private::probe::Probe`, so that an argument
/// or result type without serde's traits is reported once, on the type,
/// by the checks of [`expand_type_checks`], and not again here.
fn expand_client(service: &Service) -> TokenStream {
    let rt = rt();
    let contract = names_of(service).contract;
    let methods = service.methods.iter().map(|m| {
        let ident = m.ident();
        let docs = client_docs(service, m);
        let konst = channel_const(m);
        let arg_idents: Vec<&Ident> = m.args.iter().map(|a| &a.ident).collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let args_ty = quote!((#(#arg_tys,)*));
        let ret = client_return_type(m);
        let (probe, real, inert, call) = match (&m.output, m.kind) {
            (_, Kind::Send | Kind::Event) => (
                quote!(#rt::probe::Probe::<#args_ty>),
                quote!(SendMessage),
                quote!(SendMessageInert),
                quote!(send),
            ),
            (Output::Unit, Kind::Invoke) => (
                quote!(#rt::probe::Probe::<#args_ty, ()>),
                quote!(Invoke),
                quote!(InvokeInert),
                quote!(invoke),
            ),
            (Output::Value(t), Kind::Invoke) => (
                quote!(#rt::probe::Probe::<#args_ty, #t>),
                quote!(Invoke),
                quote!(InvokeInert),
                quote!(invoke),
            ),
            (Output::Fallible { ok, err }, Kind::Invoke) => (
                quote!(#rt::probe::Probe::<#args_ty, #ok, #err>),
                quote!(InvokeFallible),
                quote!(InvokeFallibleInert),
                quote!(invoke_fallible),
            ),
        };
        let allows = allows_bound(service, m);
        // Hygienic, so that an argument called `core` does not shadow it.
        let core = Ident::new("__ipc_core", Span::mixed_site());
        // `#[ipc(timeout_secs = N)]`: a core of the call's own, moved into
        // the future.
        let (core_of_call, core_in_future) = match m.timeout_secs {
            None => (quote!(&self.core), quote!()),
            Some(secs) => (
                quote!(self.core.with_declared_timeout(::core::time::Duration::from_secs(#secs))),
                quote!(let #core = &#core;),
            ),
        };
        quote! {
            #docs
            pub fn #ident(&self, #(#arg_idents: #arg_tys),*) -> #rt::BoxFuture<'_, #ret> #allows {
                let #core = #core_of_call;
                #rt::Box::pin(async move {
                    #core_in_future
                    #[allow(unused_imports)]
                    use #rt::probe::{#real as _, #inert as _};
                    (&&#probe::NEW)
                        .#call(#core, #contract::#konst, (#(#arg_idents,)*))
                        .await
                })
            }
        }
    });
    client_shell(service, quote!(#(#methods)*))
}

/// `NotesServer`: main-side dispatch from a channel to a handler method.
///
/// Like the client, each arm goes through a `__private::probe::Probe`.
fn expand_server(service: &Service) -> TokenStream {
    let rt = rt();
    let Names {
        contract, server, ..
    } = names_of(service);
    // The bound on `H` names the trait with the macro's span: spanned on
    // the user's trait name, an unknown type in a method would also get
    // rustc's suggestion to add it to the trait's generics, as a second
    // error beside the real one.
    let mut trait_ident = service.ident().clone();
    trait_ident.set_span(Span::call_site());
    // The handler's parameter; not `H` if a method uses a type called `H`.
    let h = service.handler_param();
    let arms = service.methods.iter().enumerate().map(|(index, m)| {
        let ident = m.ident();
        let arg_idents: Vec<Ident> = m
            .args
            .iter()
            .map(|a| format_ident!("__ipc_arg_{}", a.ident))
            .collect();
        let arg_tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let args_ty = quote!((#(#arg_tys,)*));
        let (probe, real, inert, serve) = match &m.output {
            Output::Unit => (
                quote!(#rt::probe::Probe::<#args_ty, ()>),
                quote!(Serve),
                quote!(ServeInert),
                quote!(serve),
            ),
            Output::Value(t) => (
                quote!(#rt::probe::Probe::<#args_ty, #t>),
                quote!(Serve),
                quote!(ServeInert),
                quote!(serve),
            ),
            Output::Fallible { ok, err } => (
                quote!(#rt::probe::Probe::<#args_ty, #ok, #err>),
                quote!(ServeFallible),
                quote!(ServeFallibleInert),
                quote!(serve_fallible),
            ),
        };
        quote! {
            #index => {
                #[allow(unused_imports)]
                use #rt::probe::{#real as _, #inert as _};
                (&&#probe::NEW).#serve(
                    __ipc_payload,
                    move |(#(#arg_idents,)*): #args_ty| async move {
                        // Through the trait: a method called like one
                        // of `Arc`'s (`clone`, `into`) must not reach it.
                        <#h as #trait_ident>::#ident(&*__ipc_handler, #(#arg_idents),*).await
                    },
                )
            }
        }
    });
    let dispatch = quote! {
        // Serves deprecated methods too; arguments keep the user's names.
        #[allow(deprecated, non_snake_case)]
        impl<#h: #trait_ident> #rt::Dispatch for #server<#h> {
            fn descriptor(&self) -> &'static #rt::ServiceDescriptor {
                <#contract as #rt::Service>::DESCRIPTOR
            }

            fn call(
                &self,
                method: ::core::primitive::usize,
                __ipc_payload: #rt::Bytes,
            ) -> #rt::Handler {
                let __ipc_handler = <#rt::Arc<_> as ::core::clone::Clone>::clone(&self.handler);
                match method {
                    #(#arms)*
                    _ => #rt::Handler::no_such_method(method),
                }
            }
        }
    };
    server_shell(service, quote!(#trait_ident), dispatch)
}

/// The server's type and constructors (for handlers bounded by `bound`),
/// followed by `dispatch`.
pub(crate) fn server_shell(
    service: &Service,
    bound: TokenStream,
    dispatch: TokenStream,
) -> TokenStream {
    let rt = rt();
    let vis = &service.item.vis;
    let Names {
        server, contract, ..
    } = names_of(service);
    let trait_name = service.ident().to_string();
    let server_name = server.to_string();
    let doc = format!(
        "Main-side adapter that serves [`{trait_name}`] with a handler value: \
         register it with `MainBuilder::service`. `new` takes the handler; `from_arc` shares one \
         that main's other code keeps using (an `Arc<H>` is not itself a handler).\n\nGenerated by `#[service]`."
    );
    quote! {
        #[doc = #doc]
        #vis struct #server<H> {
            handler: #rt::Arc<H>,
        }

        impl<H: #bound> #server<H> {
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

        impl<H> ::core::fmt::Debug for #server<H> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#server_name).finish_non_exhaustive()
            }
        }

        impl<H> ::core::clone::Clone for #server<H> {
            /// Another server of the same handler value.
            fn clone(&self) -> Self {
                Self { handler: ::core::clone::Clone::clone(&self.handler) }
            }
        }

        impl<H: #bound> #rt::Served for #server<H> {
            type Contract = #contract;
        }

        #dispatch
    }
}

/// One check per argument and return type, spanned on the user's type, so
/// that a type that cannot cross the wire is reported where it was written,
/// with the advice of `IpcType`'s `on_unimplemented`.
pub(crate) fn expand_type_checks<'a>(types: impl IntoIterator<Item = &'a Type>) -> TokenStream {
    let rt = rt();
    let checks = types
        .into_iter()
        .map(|ty| quote_spanned!(ty.span()=> let () = <#ty as #rt::WireType>::CHECKED;));
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn __ipc_check_wire_types() {
                #(#checks)*
            }
        };
    }
}
