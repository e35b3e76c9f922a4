//! `expose!`: renderer API types, each a whitelist of methods and events.
//!
//! Parsing builds one model per declared struct; one `check_*` function
//! per rule collects every error; expansion names the items that
//! `#[service]` and `#[events]` generated next to each trait, through the
//! trait's methods module (`notes_methods` for `Notes`): its `Client<W>`
//! alias, its `CONTRACT` descriptor, and one marker type per method.
//!
//! Names that only the compiler can check (does the trait exist? the
//! method? do two traits share a channel?) are checked by the expansion
//! itself, arranged so that each mistake is one error on the user's token:
//! see [`Reach`] and [`channel_checks`].

use std::collections::{HashMap, HashSet};

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    braced,
    ext::IdentExt as _,
    parse::{Parse, ParseStream},
    punctuated::Punctuated,
    Attribute, Path, Token, Visibility,
};

use crate::{attr, ctxt::Ctxt, krate, names::methods_module};

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

/// The generated API struct's own field, which no entry may take.
const CONNECTION_FIELD: &str = "__ipc_connection";

/// `notes: Notes { get, log }`.
#[derive(Clone)]
struct Entry {
    /// The field's doc comments (no other attribute is accepted).
    docs: Vec<Attribute>,
    field: Ident,
    path: Path,
    methods: Vec<Ident>,
    /// Slips of syntax the entry was read past (a missing field name, a
    /// list written like a `use`, a method written as a call, a missing
    /// comma): reported, and the entry kept as the user evidently meant
    /// it, so that code using the API adds no errors of its own.
    slips: Vec<syn::Error>,
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
        let docs = input.call(Attribute::parse_outer)?;
        if let Some(other) = docs.iter().find(|a| !a.path().is_ident("doc")) {
            return Err(syn::Error::new_spanned(
                other,
                "only doc comments can go on an `expose!` entry: what it grants is the same in every build",
            ));
        }
        let mut slips = Vec::new();
        let (field, path) = if input.peek2(Token![:]) && !input.peek2(Token![::]) {
            // `notes: Notes`; a keyword (`type: Notes`) is refused here.
            let field: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            (field, trait_path(input, &mut slips)?)
        } else if input.peek(Token![pub]) {
            return Err(input.error(
                "an entry takes no `pub`: every field of an API type is public (`notes: Notes { get }`)",
            ));
        } else if starts_a_path(input) {
            // `Notes { get }`: the trait, without a field name. Read on as
            // if the field were named after it.
            let path = trait_path(input, &mut slips)?;
            let written = path_text(&path);
            let Some(field) = field_named_after(&path) else {
                return Err(syn::Error::new_spanned(
                    &path,
                    format!("each entry names the API's field first: `notes: {written} {{ ... }}`"),
                ));
            };
            slips.push(syn::Error::new_spanned(
                &path,
                format!(
                    "each entry names the API's field first: `{field}: {written} {{ ... }}` (the field is how renderer code reaches it: `api.{field}`)"
                ),
            ));
            (field, path)
        } else {
            // Not a name: syn's own error ("expected identifier, found
            // keyword `type`"), or a missing `:`.
            let field: Ident = input.parse()?;
            return Err(syn::Error::new(
                input.span(),
                format!("expected `:` after the field's name, as in `{field}: Notes {{ get }}`"),
            ));
        };
        if !input.peek(syn::token::Brace) {
            let written = path_text(&path);
            return Err(syn::Error::new_spanned(
                &path,
                format!(
                    "list what `{written}` exposes between braces after it, like `{field}: {written} {{ get, list }}`"
                ),
            ));
        }
        let list;
        braced!(list in input);
        let methods = method_names(&list, &mut slips)?;
        Ok(Entry {
            docs,
            field,
            path,
            methods,
            slips,
        })
    }
}

/// Whether `input` starts with a trait's path followed by its list (`Notes
/// {`, `a::Notes {`, `crate::Notes::{`, `Notes<u64> {`): an entry without
/// its field name.
fn starts_a_path(input: ParseStream) -> bool {
    let fork = input.fork();
    if fork.parse::<Path>().is_ok() && (fork.peek(syn::token::Brace) || fork.peek(Token![::])) {
        return true;
    }
    use_style_path(&input.fork()).is_some()
}

/// The field an entry without one is read as having: the trait's name in
/// snake case (`r#type` for `Type`); `None` if that cannot be a field.
fn field_named_after(path: &Path) -> Option<Ident> {
    let last = &path.segments.last()?.ident;
    let name = crate::names::snake_case(&last.unraw().to_string());
    if syn::parse_str::<Ident>(&name).is_ok() {
        return Some(Ident::new(&name, last.span()));
    }
    // A keyword: raw, unless it cannot be (`self`, `crate`, ...).
    let raw = format!("r#{name}");
    syn::parse_str::<Ident>(&raw).ok()?;
    Some(Ident::new_raw(&name, last.span()))
}

/// The path of a list written like a `use` (`a::Notes::{ .. }`), and the
/// `::` before the braces, if `input` starts with one. Consumes them.
fn use_style_path(input: ParseStream) -> Option<(Path, Token![::])> {
    let leading_colon: Option<Token![::]> = input.parse().ok()?;
    let mut segments = Punctuated::new();
    loop {
        // `crate`, `self`, `super` (and `Self`) only where a path may
        // start; any other keyword is no path.
        let ident = if segments.is_empty()
            && (input.peek(Token![crate])
                || input.peek(Token![self])
                || input.peek(Token![super])
                || input.peek(Token![Self]))
        {
            input.call(Ident::parse_any).ok()?
        } else {
            input.parse::<Ident>().ok()?
        };
        segments.push_value(syn::PathSegment::from(ident));
        let colons: Token![::] = input.parse().ok()?;
        if input.peek(syn::token::Brace) {
            let path = Path {
                leading_colon,
                segments,
            };
            return Some((path, colons));
        }
        segments.push_punct(colons);
    }
}

/// The trait's path. One followed by `::{ .. }`, as in a `use`, is read as
/// the path, with the slip reported; any other malformed path gets syn's
/// own error.
fn trait_path(input: ParseStream, slips: &mut Vec<syn::Error>) -> syn::Result<Path> {
    if input.fork().parse::<Path>().is_ok() || use_style_path(&input.fork()).is_none() {
        return input.parse();
    }
    let (path, colons) = use_style_path(input).expect("checked on a fork");
    let written = path_text(&path);
    let names = input
        .fork()
        .step(|cursor| match cursor.group(proc_macro2::Delimiter::Brace) {
            Some((inside, _, rest)) => Ok((inside.token_stream().to_string(), rest)),
            None => Err(cursor.error("a list")),
        })
        .unwrap_or_default();
    let list = if names.is_empty() {
        "{}".to_string()
    } else {
        format!("{{ {names} }}")
    };
    slips.push(syn::Error::new_spanned(
        colons,
        format!(
            "write the list after the trait's path without `::`: `{written} {list}`, not `{written}::{list}`"
        ),
    ));
    Ok(path)
}

/// The names in an entry's list, by name only. A name written as a call
/// (`get(id)`) or two names without a comma between them are read as
/// meant, with the slip reported.
fn method_names(list: ParseStream, slips: &mut Vec<syn::Error>) -> syn::Result<Vec<Ident>> {
    let mut names = Vec::new();
    while !list.is_empty() {
        let name: Ident = list.parse()?;
        if list.peek(syn::token::Paren) {
            let args: proc_macro2::TokenTree = list.parse()?;
            slips.push(syn::Error::new_spanned(
                args,
                format!(
                    "list `{name}` by its name only, without parentheses or arguments: `{{ {name} }}`"
                ),
            ));
        }
        names.push(name);
        if list.is_empty() {
            break;
        }
        if list.peek(Token![,]) {
            list.parse::<Token![,]>()?;
        } else if list.peek(syn::Ident) {
            slips.push(syn::Error::new(
                list.span(),
                "separate the names in the list with commas: `{ get, list }`",
            ));
        } else {
            return Err(list.error("expected `,` between the names, as in `{ get, list }`"));
        }
    }
    Ok(names)
}

impl Entry {
    /// The trait's name as the user wrote it (the path's last segment).
    fn trait_ident(&self) -> Option<&Ident> {
        self.path.segments.last().map(|s| &s.ident)
    }

    /// The path as written, without spaces, for messages and docs.
    fn path_text(&self) -> String {
        path_text(&self.path)
    }
}

/// `path` as written, without spaces, for messages and docs.
fn path_text(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Entry point of `expose!`.
pub fn expose(input: TokenStream) -> TokenStream {
    let mut input: Input = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut out = TokenStream::new();
    for api in &mut input.apis {
        let mut cx = Ctxt::default();
        let runtime = attr::api_runtime(&mut cx, &mut api.attrs);
        check(&mut cx, api);
        krate::with_runtime(runtime, || match cx.check() {
            Ok(()) => out.extend(expand(api, Checks::All)),
            // Beside the errors, the API as the user meant it, so that code
            // using it adds no errors of its own.
            Err(e) => {
                out.extend(e.to_compile_error());
                out.extend(expand(&without_mistakes(api), Checks::NamesOnly));
            }
        });
    }
    out
}

/// Which of the expansion's own checks to emit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Names and channels.
    All,
    /// Names only: after a mistake in the declaration, a channel clash
    /// could be a consequence of it (the same trait listed twice).
    NamesOnly,
}

/// `api` without what `check` refused: a repeated (or reserved) field or a
/// repeated method is left out (also across entries of one trait, whose
/// `Allows` impls would otherwise conflict), and generic arguments are
/// dropped.
fn without_mistakes(api: &ApiDecl) -> ApiDecl {
    let mut fields = HashSet::new();
    let mut listed = HashSet::new();
    let entries = api
        .entries
        .iter()
        .filter(|e| e.field != CONNECTION_FIELD && fields.insert(e.field.to_string()))
        .map(|e| {
            let mut entry = e.clone();
            for segment in &mut entry.path.segments {
                segment.arguments = syn::PathArguments::None;
            }
            let path = entry.path_text();
            entry
                .methods
                .retain(|m| listed.insert((path.clone(), m.unraw().to_string())));
            entry
        })
        .collect();
    ApiDecl {
        // Without the derives already reported, which would conflict.
        attrs: api
            .attrs
            .iter()
            .filter(|a| derived_again(a).is_empty())
            .cloned()
            .collect(),
        vis: api.vis.clone(),
        ident: api.ident.clone(),
        entries,
    }
}

/// Runs every rule over one API declaration.
fn check(cx: &mut Ctxt, api: &ApiDecl) {
    for slip in api.entries.iter().flat_map(|e| &e.slips) {
        cx.syn_error(slip.clone());
    }
    check_derives(cx, api);
    check_unique_fields(cx, api);
    check_unique_traits(cx, api);
    for entry in &api.entries {
        check_trait_path(cx, entry);
        check_not_empty(cx, entry);
        check_unique_methods(cx, entry);
    }
}

/// The traits every API type implements already, which a `#[derive]` on
/// the declaration would implement a second time.
const IMPLEMENTED: [&str; 2] = ["Clone", "Debug"];

/// The derived traits of `attr` (a `#[derive(...)]`) that the API type
/// implements already, by the user's tokens.
fn derived_again(attr: &Attribute) -> Vec<Path> {
    if !attr.path().is_ident("derive") {
        return Vec::new();
    }
    attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
        .map(|paths| {
            paths
                .into_iter()
                .filter(|p| {
                    p.segments
                        .last()
                        .is_some_and(|s| IMPLEMENTED.iter().any(|t| s.ident == t))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An API type is `Clone` (a clone is another handle on the connection)
/// and `Debug` already: deriving either is told as such, rather than as
/// rustc's conflicting implementations.
fn check_derives(cx: &mut Ctxt, api: &ApiDecl) {
    for path in api.attrs.iter().flat_map(derived_again) {
        let name = path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        cx.error_spanned_by(
            &path,
            format!(
                "`{}` is already `Clone` and `Debug` (a clone is another handle on the same connection); \
                 remove `{name}` from the derive",
                api.ident
            ),
        );
    }
}

/// Each entry becomes a field of the API type, so field names are unique.
fn check_unique_fields(cx: &mut Ctxt, api: &ApiDecl) {
    let mut fields: HashMap<String, &Ident> = HashMap::new();
    for entry in &api.entries {
        if entry.field == CONNECTION_FIELD {
            cx.error_spanned_by(
                &entry.field,
                format!("`{CONNECTION_FIELD}` is the name of the API's own connection field; name the entry otherwise"),
            );
        }
        if let Some(first) = fields.insert(entry.field.to_string(), &entry.field) {
            cx.error_spanned_by(
                &entry.field,
                format!(
                    "the field `{first}` is declared twice in `{}`; give each entry its own field name",
                    api.ident
                ),
            );
        }
    }
}

/// A whitelist is reviewed in one place, so each trait has one entry that
/// lists everything the API may reach of it. (A trait reached by two
/// different paths is caught by the channel check, which compares the
/// contracts themselves.)
fn check_unique_traits(cx: &mut Ctxt, api: &ApiDecl) {
    let mut traits: HashMap<String, &Entry> = HashMap::new();
    for entry in &api.entries {
        let text = entry.path_text();
        if let Some(first) = traits.get(&text) {
            cx.error_spanned_by(
                &entry.path,
                format!(
                    "`{text}` already has an entry in `{}` (the field `{}`); list all its methods there",
                    api.ident, first.field
                ),
            );
        } else {
            traits.insert(text, entry);
        }
    }
}

/// An entry names a trait, not a type: a path without generic arguments
/// (IPC traits have none).
fn check_trait_path(cx: &mut Ctxt, entry: &Entry) {
    for segment in &entry.path.segments {
        if !segment.arguments.is_none() {
            cx.error_spanned_by(
                &segment.arguments,
                "write the trait's path without generic arguments: an IPC trait has none",
            );
        }
    }
}

/// An entry that lists nothing grants nothing; it is most likely a
/// mistake, and the trait would be better left out.
fn check_not_empty(cx: &mut Ctxt, entry: &Entry) {
    if entry.methods.is_empty() {
        cx.error_spanned_by(
            &entry.path,
            format!(
                "this entry exposes nothing: list the methods or events of `{}` that renderers may reach between the braces, or remove the entry",
                entry.path_text()
            ),
        );
    }
}

/// Each method is listed once, so that a reviewer reads an unambiguous
/// list.
fn check_unique_methods(cx: &mut Ctxt, entry: &Entry) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for m in &entry.methods {
        // `get` and `r#get` are the same method.
        if seen.insert(m.unraw().to_string(), m).is_some() {
            cx.error_spanned_by(m, format!("`{m}` is listed twice; list it once"));
        }
    }
}

/// How one entry is reached: the trait's path and the items `#[service]`
/// or `#[events]` generated next to it.
///
/// Every name the user wrote is resolved exactly once, by an import, so
/// that a wrong name is one error on the user's token and not a cascade:
/// rustc binds the name of a failed import to an error placeholder and
/// stays silent about every later use of it.
///
/// - `use <prefix>::{Notes as _, notes_methods as __ipc_Api_notes};` at
///   the macro's call site resolves the trait and its methods module. Both
///   are spanned on the user's trait name, and rustc reports one unresolved
///   import per span, the first: a misspelled trait is one error,
///   "unresolved import `self::Note`", with rustc's "a similar name exists"
///   suggestion. The struct's fields and the `Api` impl reach the module
///   only through the alias.
/// - Inside a `const _` block, the alias is renamed back to the module's
///   own name and each listed method's marker is imported from it, so that
///   a misspelled method is one error that reads "unresolved import
///   `notes_methods::gett`", with rustc's suggestion of the nearest method.
struct Reach<'a> {
    entry: &'a Entry,
    /// The module-level alias of the trait's methods module.
    alias: Ident,
    /// The methods module's own name (`notes_methods`).
    module: Ident,
}

impl<'a> Reach<'a> {
    fn new(api: &ApiDecl, entry: &'a Entry) -> Option<Reach<'a>> {
        let trait_ident = entry.trait_ident()?;
        let module = methods_module(trait_ident);
        // The API's name is prefixed with its length, so that `Foo_bar`'s
        // field `x` and `Foo`'s field `bar_x` get different aliases.
        let api_name = api.ident.to_string();
        let alias = format_ident!(
            "__ipc_{}{}_{}",
            api_name.len(),
            api_name,
            entry.field.to_string().trim_start_matches("r#")
        );
        Some(Reach {
            entry,
            alias,
            module,
        })
    }

    /// `use <prefix>::{Notes as _, notes_methods as __ipc_Api_notes};`
    fn import(&self) -> TokenStream {
        let path = &self.entry.path;
        let Some(trait_ident) = self.entry.trait_ident() else {
            return TokenStream::new();
        };
        // The prefix keeps the spans it was written with, or the call
        // site's: a segment with the span of the failed name would cut the
        // path rustc prints in its message.
        let mut prefix: Vec<Ident> = path
            .segments
            .iter()
            .take(path.segments.len() - 1)
            .map(|s| s.ident.clone())
            .collect();
        // A single name is looked up in the module of the call, with
        // `self::`: rustc's message for a misspelled `self::Note` suggests
        // the nearest name, where for a bare `Note` it reports a missing
        // crate.
        if prefix.is_empty() && path.leading_colon.is_none() {
            prefix.push(Ident::new("self", Span::call_site()));
        }
        let leading = &path.leading_colon;
        // Both imports are spanned on the user's trait name (see above).
        // When only the module is missing (the trait is not annotated, or
        // was imported without it), rustc says "no `notes_methods` in the
        // root" and, if it exists elsewhere, suggests importing it.
        let span = trait_ident.span();
        let module = Ident::new(&self.module.to_string(), span);
        let alias = Ident::new(&self.alias.to_string(), span);
        let check = quote_spanned!(span=> #trait_ident as _);
        let reach = quote_spanned!(span=> #module as #alias);
        quote! {
            #[allow(unused_imports)]
            use #leading #(#prefix::)* {#check, #reach};
        }
    }
}

/// The API type: its imports, the struct with one field per entry, the
/// `Allows` impls of its whitelist, the channel checks, and the `Api` impl
/// and constructors.
fn expand(api: &ApiDecl, checks: Checks) -> TokenStream {
    let rt = crate::expand::rt();
    let ApiDecl {
        attrs, vis, ident, ..
    } = api;
    let name = ident.to_string();
    let reaches: Vec<Reach> = api
        .entries
        .iter()
        .filter_map(|e| Reach::new(api, e))
        .collect();
    let imports = reaches.iter().map(Reach::import);
    let fields = reaches.iter().map(|r| {
        let field = &r.entry.field;
        let alias = &r.alias;
        let list = r
            .entry
            .methods
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let doc = format!("[`{}`]: exposes {list}.", r.entry.path_text());
        let docs = &r.entry.docs;
        let spacer = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        quote! {
            #(#docs)*
            #spacer
            #[doc = #doc]
            pub #field: #alias::Client<#ident>
        }
    });
    let inits = reaches.iter().map(|r| {
        let field = &r.entry.field;
        let alias = &r.alias;
        quote!(#field: #alias::Client::<#ident>::__new(&conn))
    });
    let allows = reaches.iter().map(|r| {
        let (alias, module) = (&r.alias, &r.module);
        let markers: Vec<Ident> = (0..r.entry.methods.len())
            .map(|i| format_ident!("__ipc_marker_{}", i))
            .collect();
        // Each marker also spanned on the name the user listed, for the
        // errors about that name.
        let listed: Vec<(&Ident, Ident)> = r
            .entry
            .methods
            .iter()
            .zip(&markers)
            .map(|(m, marker)| (m, Ident::new(&marker.to_string(), m.span())))
            .collect();
        let imports = listed
            .iter()
            .map(|(m, marker)| quote_spanned!(m.span()=> #m as #marker));
        // Each name listed must be a method's (not, say, a renamed
        // method's channel name, whose stand-in fails here with advice).
        let checks = listed
            .iter()
            .map(|(m, marker)| quote_spanned!(m.span()=> const _: () = #marker::LISTED;));
        quote! {
            const _: () = {
                use #alias as #module;
                #[allow(unused_imports)]
                use #module::{#(#imports),*};
                #(impl #rt::Allows<#markers> for #ident {})*
                #(#checks)*
            };
        }
    });
    let contracts = reaches.iter().map(|r| {
        let alias = &r.alias;
        quote!(#alias::CONTRACT)
    });
    let channels = reaches.iter().flat_map(|r| {
        let alias = &r.alias;
        let rt = rt.clone();
        r.entry.methods.iter().map(move |m| {
            // Descriptors name methods without `r#`, however written.
            let m = m.unraw().to_string();
            quote!(#rt::check::channel_of(#alias::CONTRACT, #m))
        })
    });
    let clashes = match checks {
        Checks::All => channel_checks(api, &reaches),
        Checks::NamesOnly => Vec::new(),
    };
    // The struct's `#[cfg]`s go on every item made for it, so that a
    // configured-out API leaves nothing behind naming it; and a deprecated
    // API is no use of itself in them.
    let cfgs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let cfg = quote!(#(#cfgs)*);
    let own = quote!(#cfg #[allow(deprecated)]);
    quote! {
        #(#cfg #imports)*

        #(#attrs)*
        #vis struct #ident {
            #(#fields,)*
            __ipc_connection: #rt::Connection,
        }

        #(#own #allows)*

        #(#own #clashes)*

        /// Another handle on the same connection, for another task.
        #own
        impl ::core::clone::Clone for #ident {
            fn clone(&self) -> Self {
                <Self as #rt::Api>::__from_connection(self.__ipc_connection.clone())
            }
        }

        #own
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name)
                    .field("connection", &self.__ipc_connection)
                    .finish_non_exhaustive()
            }
        }

        #own
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

        #own
        impl #ident {
            /// Connects over the socket inherited from main (in a process
            /// started by `Main::spawn_renderer`), with the default
            /// settings. For others (`max_frame_size`, `call_timeout`, …),
            /// connect with `Connection::builder()`, its settings, then
            /// `.connect_inherited_as::<ThisApi>()` (likewise
            /// `connect_unix_as`, `connect_tcp_as`, `connect_as`).
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

            /// Connects to main's TCP socket at `addr` (a loopback
            /// address, see `Main::listen_tcp`) with the one-time `token`
            /// main issued for this renderer.
            pub async fn connect_tcp(
                addr: impl #rt::ToSocketAddrs,
                token: &str,
            ) -> ::core::result::Result<Self, #rt::IpcError> {
                #rt::Connection::builder().connect_tcp_as::<Self>(addr, token).await
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

            /// Closes the connection: calls still waiting fail with
            /// `IpcError::Disconnected`, and what was sent so far is
            /// written, for at most a second (`Connection::close`).
            pub async fn close(self) -> ::core::result::Result<(), #rt::IpcError> {
                self.__ipc_connection.close().await
            }

            /// Waits until the connection to main closes, and returns why.
            pub async fn closed(&self) -> #rt::IpcError {
                self.__ipc_connection.closed().await
            }

            /// Whether the connection to main is closed (`closed` says
            /// why).
            pub fn is_closed(&self) -> bool {
                self.__ipc_connection.is_closed()
            }

            /// A handle on this API that does not keep its connection
            /// open, for a listener's callback that calls main back (one
            /// holding the API itself keeps the connection open for as
            /// long as it is registered: a detached one, for ever).
            /// `upgrade` gives the API back while another handle lives.
            pub fn downgrade(&self) -> #rt::WeakApi<Self> {
                #rt::WeakApi::__new(self.__ipc_connection.downgrade())
            }
        }
    }
}

/// One compile-time check per pair of entries: the two contracts must not
/// define the same channel, or main could not tell their frames apart and
/// a renderer granted one would be granted the other.
///
/// Channels are strings, which only constant evaluation can compare: each
/// check is a `const _: () = ...;` that calls
/// `__private::check::channel_clash` on both descriptors and, on a clash,
/// panics with the message it returns, naming both methods and the
/// channel. The `panic!` is spanned on the later entry's trait, so that
/// rustc reports "evaluation panicked: `Notes::get` and `Archive::get` both
/// use the channel `notes:get`..." there. Entries naming the same trait
/// with the same path are already reported by `check_unique_traits`.
fn channel_checks(api: &ApiDecl, reaches: &[Reach]) -> Vec<TokenStream> {
    let rt = crate::expand::rt();
    let name = api.ident.to_string();
    let mut checks = Vec::new();
    for (j, later) in reaches.iter().enumerate() {
        for earlier in &reaches[..j] {
            if earlier.entry.path_text() == later.entry.path_text() {
                continue;
            }
            let (a, b) = (&earlier.alias, &later.alias);
            let span = later
                .entry
                .path
                .segments
                .last()
                .map_or_else(Span::call_site, |s| s.ident.span());
            let panic = quote_spanned!(span=> ::core::panic!("{}", clash.as_str()));
            checks.push(quote! {
                const _: () = {
                    if let ::core::option::Option::Some(clash) =
                        #rt::check::channel_clash(#name, #a::CONTRACT, #b::CONTRACT)
                    {
                        #panic
                    }
                };
            });
        }
    }
    checks
}
