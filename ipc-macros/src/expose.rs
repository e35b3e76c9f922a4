//! `expose!`: renderer API types, each a whitelist of methods and events.
//!
//! Parsing builds one model per declared struct; checks collect every
//! error; expansion names the items that `#[service]` and `#[events]`
//! generated next to each trait, through the trait's methods module
//! (`notes_methods` for `Notes`): its `Client<W>` alias, its `CONTRACT`
//! descriptor, and one marker type per method with its `CHANNEL`.

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use syn::{
    braced,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    Attribute, Path, Token, Visibility,
};

use crate::{ctxt::Ctxt, names::methods_module};

/// Everything inside one `expose! { ... }`.
struct Input {
    apis: Vec<ApiDecl>,
}

/// `pub struct RendererApi { notes: Notes { get, log }, ... }`.
struct ApiDecl {
    attrs: Vec<Attribute>,
    vis: Visibility,
    ident: Ident,
    entries: Vec<Entry>,
}

/// `notes: Notes { get, log }`.
struct Entry {
    field: Ident,
    path: Path,
    methods: Vec<Ident>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut apis = Vec::new();
        while !input.is_empty() {
            apis.push(input.parse()?);
        }
        Ok(Input { apis })
    }
}

impl Parse for ApiDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let ident: Ident = input.parse()?;
        let body;
        braced!(body in input);
        let entries = Punctuated::<Entry, Token![,]>::parse_terminated(&body)?;
        Ok(ApiDecl {
            attrs,
            vis,
            ident,
            entries: entries.into_iter().collect(),
        })
    }
}

impl Parse for Entry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let field: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let path: Path = input.parse()?;
        let list;
        braced!(list in input);
        let methods = Punctuated::<Ident, Token![,]>::parse_terminated(&list)?;
        Ok(Entry {
            field,
            path,
            methods: methods.into_iter().collect(),
        })
    }
}

impl Entry {
    /// The path of the trait's methods module: `a::b::Notes` → `a::b::notes_methods`.
    fn module(&self) -> TokenStream {
        let mut path = self.path.clone();
        if let Some(last) = path.segments.last_mut() {
            // Spanned on the user's trait name, so that a misspelled trait
            // is reported where it was written.
            let mut module = methods_module(&last.ident);
            module.set_span(last.ident.span());
            last.ident = module;
            last.arguments = syn::PathArguments::None;
        }
        quote!(#path)
    }
}

/// Entry point of `expose!`.
pub fn expose(input: TokenStream) -> TokenStream {
    let input: Input = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut out = TokenStream::new();
    for api in &input.apis {
        let mut cx = Ctxt::default();
        check(&mut cx, api);
        match cx.check() {
            Ok(()) => out.extend(expand(api)),
            Err(e) => out.extend(e.to_compile_error()),
        }
    }
    out
}

/// An API lists each field once, each entry names at least one method, and
/// no method twice: a whitelist is reviewed in one place, so it must be
/// unambiguous.
fn check(cx: &mut Ctxt, api: &ApiDecl) {
    let mut fields: HashMap<String, &Ident> = HashMap::new();
    for entry in &api.entries {
        if let Some(first) = fields.insert(entry.field.to_string(), &entry.field) {
            cx.error_spanned_by(
                &entry.field,
                format!("the field `{first}` is declared twice in `{}`; give each entry its own field name", api.ident),
            );
        }
        if entry.methods.is_empty() {
            cx.error_spanned_by(
                &entry.path,
                "this entry exposes nothing: list the methods or events renderers may reach, like `Notes { get, list }`",
            );
        }
        let mut seen: HashMap<String, &Ident> = HashMap::new();
        for m in &entry.methods {
            if seen.insert(m.to_string(), m).is_some() {
                cx.error_spanned_by(m, format!("`{m}` is listed twice; list it once"));
            }
        }
    }
}

fn expand(api: &ApiDecl) -> TokenStream {
    let rt = quote!(::ipc_runtime::__private);
    let ApiDecl {
        attrs,
        vis,
        ident,
        entries,
    } = api;
    let name = ident.to_string();
    let fields = entries.iter().map(|e| {
        let field = &e.field;
        let module = e.module();
        let path = &e.path;
        let list = e
            .methods
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let doc = format!(
            "[`{}`]: exposes {list}.",
            quote!(#path).to_string().replace(' ', "")
        );
        quote! {
            #[doc = #doc]
            pub #field: #module::Client<#ident>
        }
    });
    let inits = entries.iter().map(|e| {
        let field = &e.field;
        let module = e.module();
        quote!(#field: #module::Client::<#ident>::__new(&conn))
    });
    let allows = entries.iter().flat_map(|e| {
        let module = e.module();
        let rt = rt.clone();
        e.methods
            .iter()
            .map(move |m| quote!(impl #rt::Allows<#module::#m> for #ident {}))
    });
    let contracts = entries.iter().map(|e| {
        let module = e.module();
        quote!(#module::CONTRACT)
    });
    let channels = entries.iter().flat_map(|e| {
        let module = e.module();
        e.methods.iter().map(move |m| quote!(#module::#m::CHANNEL))
    });
    quote! {
        #(#attrs)*
        #vis struct #ident {
            #(#fields,)*
            __ipc_connection: #rt::Connection,
        }

        #(#allows)*

        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name)
                    .field("connection", &self.__ipc_connection)
                    .finish_non_exhaustive()
            }
        }

        impl #rt::Api for #ident {
            const NAME: &'static str = #name;
            const CONTRACTS: &'static [&'static #rt::ServiceDescriptor] = &[#(#contracts),*];
            const ALLOWED: &'static [&'static str] = &[#(#channels),*];

            fn __from_connection(conn: #rt::Connection) -> Self {
                Self {
                    #(#inits,)*
                    __ipc_connection: conn,
                }
            }
        }

        impl #ident {
            /// Connects over the socket inherited from main (in a process
            /// started by `Main::spawn_renderer`).
            pub async fn connect_inherited() -> ::core::result::Result<Self, #rt::IpcError> {
                #rt::Connection::builder().connect_inherited_as::<Self>().await
            }

            /// Connects to main's Unix socket at `path` with the one-time
            /// `token` main issued for this renderer.
            pub async fn connect_unix(
                path: impl ::core::convert::AsRef<#rt::Path>,
                token: &str,
            ) -> ::core::result::Result<Self, #rt::IpcError> {
                #rt::Connection::builder().connect_unix_as::<Self>(path, token).await
            }

            /// Connects over `transport` (for example one end of
            /// `transport::memory_pair`).
            pub async fn connect(
                transport: #rt::Transport,
            ) -> ::core::result::Result<Self, #rt::IpcError> {
                #rt::Connection::builder().connect_as::<Self>(transport).await
            }

            /// The id main assigned to this renderer.
            pub fn id(&self) -> #rt::RendererId {
                self.__ipc_connection.id()
            }

            /// The label main gave this renderer.
            pub fn label(&self) -> &str {
                self.__ipc_connection.label()
            }

            /// Waits until every message sent so far is written.
            pub async fn flush(&self) -> ::core::result::Result<(), #rt::IpcError> {
                self.__ipc_connection.flush().await
            }

            /// Flushes, then closes the connection.
            pub async fn close(self) -> ::core::result::Result<(), #rt::IpcError> {
                self.__ipc_connection.close().await
            }

            /// Waits until the connection to main closes, and returns why.
            pub async fn closed(&self) -> #rt::IpcError {
                self.__ipc_connection.closed().await
            }
        }
    }
}
