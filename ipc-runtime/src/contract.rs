//! Contract descriptors: what `#[service]` records about a trait, and the
//! fingerprints compared at connect time.

use std::fmt::{self, Write as _};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// How a method is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MethodKind {
    /// Request/reply (`invoke` / `handle` in Electron).
    Invoke,
    /// Fire and forget (`send` / `on` in Electron).
    Send,
    /// A push from main to renderers (`webContents.send` /
    /// `ipcRenderer.on` in Electron), declared with `#[events]`.
    Event,
}

/// One argument of a method, as written in the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgDescriptor {
    /// The argument's name.
    pub name: &'static str,
    /// Its type, as written.
    pub ty: &'static str,
}

/// One method of a service.
#[derive(Debug, Clone, Copy)]
pub struct MethodDescriptor {
    /// The method's name in the trait.
    pub name: &'static str,
    /// Its channel, `namespace:method`.
    pub channel: &'static str,
    /// Request/reply or fire-and-forget.
    pub kind: MethodKind,
    /// Its arguments after `&self`.
    pub args: &'static [ArgDescriptor],
    /// Its return type (`T` of `Result<T, E>`), as written.
    pub output: &'static str,
    /// `E` of `Result<T, E>`, as written, when the method has a typed error.
    pub error: Option<&'static str>,
    /// Traces the wire shapes of the argument, result and error types (the
    /// macros generate it; it traces once per process). A descriptor
    /// written by hand can use [`WireShapes::untraced`].
    pub shapes: fn() -> WireShapes,
    /// Describes the same types as trees, for a handshake mismatch to name
    /// the field, variant or element that differs (the macros generate
    /// it; it traces once per process, on the first mismatch, and copies
    /// that after). A descriptor written by hand can use
    /// [`WireDescription::none`].
    pub describe: fn() -> WireDescription,
}

/// The wire shapes of a method's types as trees (field and variant names,
/// and their types), for a handshake mismatch to say where main's and a
/// renderer's differ: "at `transfer.cents`, main's is `u64` and this
/// renderer's `i64`". Opaque; the macros build it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireDescription {
    pub(crate) args: Vec<Option<crate::shape::Desc>>,
    pub(crate) output: Option<crate::shape::Desc>,
    pub(crate) error: Option<crate::shape::Desc>,
}

impl WireDescription {
    /// Nothing described: a mismatch names the types, not what differs
    /// inside them.
    pub fn none() -> Self {
        Self::default()
    }

    /// From each argument's description, the result's and the typed
    /// error's (`None` for a type that cannot be traced).
    #[doc(hidden)]
    pub fn __of(
        args: Vec<Option<TypeDescription>>,
        output: Option<TypeDescription>,
        error: Option<TypeDescription>,
    ) -> Self {
        WireDescription {
            args: args.into_iter().map(|a| a.map(|t| t.0)).collect(),
            output: output.map(|t| t.0),
            error: error.map(|t| t.0),
        }
    }
}

/// One type's wire shape as a tree, for [`WireDescription`]. Opaque.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDescription(pub(crate) crate::shape::Desc);

/// The wire shapes of a method's types, for the connect-time comparison:
/// a hash of each type's encoding traced from its `Deserialize` impl (the
/// names and order of struct fields and enum variants, and their types, but
/// not the type's own name), or `None` for a type that cannot be traced,
/// which is then compared by its name as written. The macros trace each
/// argument on its own ([`WireShapes::args_of`]), so that one argument that
/// cannot be traced leaves the others compared by shape.
///
/// Tracing runs the type's `Deserialize` impl on made-up values (numbers
/// 1, strings `"a"`, one item per collection, each enum variant in turn).
/// A type whose impl refuses such values (say a `try_from` that validates)
/// cannot be traced; nor can one that asks for a self-describing format,
/// which the wire format refuses anyway. A panic in the impl counts as
/// "cannot be traced" too, but it is still a panic: under `panic = "abort"`
/// it ends the process, as it would on a hostile frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireShapes {
    /// The argument list's shape (`None`: every argument is compared by
    /// its name as written).
    pub args: Option<u64>,
    /// The result's shape (`()` for `send` and events).
    pub output: Option<u64>,
    /// The typed error's shape (`()` for a method without one).
    pub error: Option<u64>,
}

impl WireShapes {
    /// Nothing traced: each type is compared by its name as written.
    pub fn untraced() -> Self {
        Self::default()
    }

    /// Traces argument tuple `A` (as one type: if any argument cannot be
    /// traced, all are compared by name), result `T` and typed error `E`.
    pub fn trace<A: DeserializeOwned, T: DeserializeOwned, E: DeserializeOwned>() -> Self {
        WireShapes {
            args: crate::shape::trace::<A>(),
            output: crate::shape::trace::<T>(),
            error: crate::shape::trace::<E>(),
        }
    }

    /// The argument list's shape from each argument's, traced one by one:
    /// `(shape, name as written)` in order, an argument whose shape is
    /// `None` counting by its name.
    ///
    /// ```
    /// use ipc_runtime::WireShapes;
    ///
    /// let a = WireShapes::args_of(&[(Some(7), "Memo"), (None, "Amount")]);
    /// let b = WireShapes::args_of(&[(Some(7), "Memo"), (None, "Cents")]);
    /// assert_ne!(a, b);
    /// ```
    pub fn args_of(args: &[(Option<u64>, &str)]) -> u64 {
        args.iter()
            .fold(fnv(FNV_OFFSET, b"args"), |h, (shape, name)| {
                shape_or_name(h, *shape, name)
            })
    }
}

/// Everything `#[service]` or `#[events]` records about one trait.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDescriptor {
    /// The trait's name.
    pub name: &'static str,
    /// The channel namespace.
    pub namespace: &'static str,
    /// The methods, in declaration order.
    pub methods: &'static [MethodDescriptor],
}

impl ServiceDescriptor {
    /// The method on `channel`, with its index in [`Self::methods`].
    pub fn method(&self, channel: &str) -> Option<(usize, &'static MethodDescriptor)> {
        self.methods
            .iter()
            .enumerate()
            .find(|(_, m)| m.channel == channel)
    }
}

/// A contract (a service or an events trait), implemented by the
/// `…Contract` type that `#[service]` or `#[events]` generates.
pub trait Service {
    /// The contract's descriptor.
    const DESCRIPTOR: &'static ServiceDescriptor;
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes` continued from `hash`, then a separator byte that no
/// UTF-8 text holds.
pub(crate) const fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    // A separator, so that ("ab", "c") and ("a", "bc") differ.
    hash ^= 0xff;
    hash.wrapping_mul(FNV_PRIME)
}

/// The fingerprint of one method: its channel, kind, and the wire shapes
/// of its argument and result types ([`WireShapes`]; a type that cannot be
/// traced counts by its name as written). Not the argument names, which do
/// not reach the wire. Computed at run time, for logs and tests that name
/// a contract's version: the handshake does not exchange it, but compares
/// the four parts it is made of (kind, arguments, result and error), which
/// the renderer sends for each channel, so that a mismatch can say which
/// part differs.
pub fn method_fingerprint(method: &MethodDescriptor) -> u64 {
    fingerprint_of(method.channel, &method_parts(method))
}

/// The parts of a method's fingerprint, hashed apart so that a handshake
/// mismatch can say which differs: its kind, its arguments, its result and
/// its typed error.
pub(crate) fn method_parts(method: &MethodDescriptor) -> [u64; 4] {
    let shapes = (method.shapes)();
    let kind = fnv(
        FNV_OFFSET,
        match method.kind {
            MethodKind::Invoke => b"invoke",
            MethodKind::Send => b"send",
            MethodKind::Event => b"event",
        },
    );
    let args = match shapes.args {
        Some(traced) => shape(FNV_OFFSET, traced),
        None => method
            .args
            .iter()
            .fold(fnv(FNV_OFFSET, b"names"), |h, arg| {
                fnv(h, arg.ty.as_bytes())
            }),
    };
    let output = shape_or_name(FNV_OFFSET, shapes.output, method.output);
    let error = match method.error {
        Some(e) => shape_or_name(FNV_OFFSET, shapes.error, e),
        None => fnv(FNV_OFFSET, b"!"),
    };
    [kind, args, output, error]
}

/// `hash` continued with a type's traced shape, or with its name as
/// written if it could not be traced.
fn shape_or_name(hash: u64, traced: Option<u64>, name: &str) -> u64 {
    match traced {
        Some(traced) => shape(hash, traced),
        None => fnv(fnv(hash, b"name"), name.as_bytes()),
    }
}

/// `hash` continued with a type's traced shape.
fn shape(hash: u64, traced: u64) -> u64 {
    fnv(fnv(hash, b"shape"), &traced.to_le_bytes())
}

/// What each of [`method_parts`] is, in a mismatch's words.
const PART_NAMES: [&str; 4] = ["kind of method", "arguments", "result type", "error type"];

/// A method's fingerprint from its channel and [`method_parts`].
fn fingerprint_of(channel: &str, parts: &[u64; 4]) -> u64 {
    parts
        .iter()
        .fold(fnv(FNV_OFFSET, channel.as_bytes()), |h, part| {
            fnv(h, &part.to_le_bytes())
        })
}

/// The fingerprint of a service: its name, namespace and every method's
/// fingerprint ([`method_fingerprint`]), in order. Not used by the
/// handshake, which compares channel by channel: the fingerprints an
/// [`IpcError::HandshakeMismatch`](crate::IpcError::HandshakeMismatch)
/// reports cover only the channels it compared, and differ from this.
pub fn service_fingerprint(service: &ServiceDescriptor) -> u64 {
    let mut h = fnv(FNV_OFFSET, service.name.as_bytes());
    h = fnv(h, service.namespace.as_bytes());
    for method in service.methods {
        h = fnv(h, &method_fingerprint(method).to_le_bytes());
    }
    h
}

/// A renderer API: the whitelist of channels a renderer may reach, declared
/// with `expose!`. Main accepts each renderer *as* one `Api` type and checks
/// every frame from it against [`Api::ALLOWED`]; the renderer builds the
/// same type from its connection and can call only what it lists.
pub trait Api: Sized {
    /// The API type's name, for messages.
    const NAME: &'static str;
    /// The contracts (services and events traits) the API draws from.
    const CONTRACTS: &'static [&'static ServiceDescriptor];
    /// Every channel the API exposes: methods it may call or send to, and
    /// events it may listen to.
    const ALLOWED: &'static [&'static str];

    /// Builds the API over a connection. Used by the generated `connect`
    /// functions; not meant to be called by hand.
    #[doc(hidden)]
    fn __from_connection(conn: crate::Connection) -> Self;
}

/// What main grants one connection: its API's name and whitelist.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub name: &'static str,
    pub allowed: std::collections::HashSet<&'static str>,
}

impl Grant {
    pub(crate) fn of<A: Api>() -> Self {
        Grant {
            name: A::NAME,
            allowed: A::ALLOWED.iter().copied().collect(),
        }
    }

    pub(crate) fn allows(&self, channel: &str) -> bool {
        self.allowed.contains(channel)
    }
}

/// Combines service fingerprints into one contract fingerprint.
pub(crate) fn combine(fingerprints: impl IntoIterator<Item = u64>) -> u64 {
    fingerprints
        .into_iter()
        .fold(FNV_OFFSET, |h, fp| fnv(h, &fp.to_le_bytes()))
}

/// What a renderer sends about one service in its handshake: enough for main
/// to name the channels that differ, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceSummary {
    pub name: String,
    /// Each method's channel and [`method_parts`].
    pub methods: Vec<(String, [u64; 4])>,
    /// Each method's signature as written, in the order of `methods`: in
    /// a summary made from a descriptor (main's own), never sent, so that
    /// a renderer's arrives without them.
    #[serde(skip)]
    pub signatures: Vec<Signature>,
}

impl ServiceSummary {
    pub(crate) fn of(d: &ServiceDescriptor) -> Self {
        ServiceSummary {
            name: d.name.to_string(),
            methods: d
                .methods
                .iter()
                .map(|m| (m.channel.to_string(), method_parts(m)))
                .collect(),
            signatures: d.methods.iter().map(Signature::of).collect(),
        }
    }

    /// The same service with only the channels `visible` allows, in the
    /// order of their names.
    fn only(&self, visible: &dyn Fn(&str) -> bool) -> ServiceSummary {
        type Kept<'a> = (&'a (String, [u64; 4]), Option<&'a Signature>);
        let mut kept: Vec<Kept<'_>> = self
            .methods
            .iter()
            .enumerate()
            .filter(|(_, (channel, _))| visible(channel))
            .map(|(i, method)| (method, self.signatures.get(i)))
            .collect();
        kept.sort_unstable_by(|a, b| a.0 .0.cmp(&b.0 .0));
        ServiceSummary {
            name: self.name.clone(),
            methods: kept.iter().map(|(method, _)| (*method).clone()).collect(),
            signatures: kept
                .iter()
                .filter_map(|(_, signature)| signature.cloned())
                .collect(),
        }
    }

    /// A fingerprint of the service's name and each channel's
    /// [`method_parts`], in the order of `methods`: made by main from
    /// summaries [`only`](Self::only) made, two of the same channels
    /// have the same, however their methods were declared.
    fn fingerprint(&self) -> u64 {
        self.methods.iter().fold(
            fnv(FNV_OFFSET, self.name.as_bytes()),
            |h, (channel, parts)| fnv(h, &fingerprint_of(channel, parts).to_le_bytes()),
        )
    }
}

/// Main's types are quoted in a handshake rejection up to this many
/// characters, so that its size does not depend on how they are written.
const SIGNATURE_CHARS: usize = 200;

/// A method's types as written in the trait, for a handshake mismatch to
/// say what main's side of a differing part is.
#[derive(Debug, Clone)]
pub(crate) struct Signature {
    kind: MethodKind,
    args: &'static [ArgDescriptor],
    output: &'static str,
    error: Option<&'static str>,
    describe: fn() -> WireDescription,
}

/// Compared as written: `describe` describes the same types.
impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.args, self.output, self.error)
            == (other.kind, other.args, other.output, other.error)
    }
}

impl Eq for Signature {}

impl Signature {
    fn of(m: &MethodDescriptor) -> Self {
        Signature {
            kind: m.kind,
            args: m.args,
            output: m.output,
            error: m.error,
            describe: m.describe,
        }
    }

    /// Part `part` of [`method_parts`] (see [`PART_NAMES`]) on main's
    /// side, in words.
    fn describe(&self, part: usize) -> String {
        match part {
            0 => match self.kind {
                MethodKind::Invoke => "main's is an invoke".into(),
                MethodKind::Send => "main's is a send".into(),
                MethodKind::Event => "main's is an event".into(),
            },
            1 => {
                let args: Vec<String> = self
                    .args
                    .iter()
                    .map(|a| format!("{}: {}", a.name, a.ty))
                    .collect();
                format!("main's: `({})`", Cut(&args.join(", "), SIGNATURE_CHARS))
            }
            2 => format!("main's: `{}`", Cut(self.output, SIGNATURE_CHARS)),
            _ => match self.error {
                Some(e) => format!("main's: `{}`", Cut(e, SIGNATURE_CHARS)),
                None => "main's has none".into(),
            },
        }
    }
}

/// A handshake rejection lists at most this many differences…
const LISTED_DIFFERENCES: usize = 16;
/// …and quotes at most this many characters of each name a renderer sent.
const QUOTED_CHARS: usize = 80;

/// The differences a handshake rejection names. A hello is the renderer's
/// to write, so the list is bounded whatever it holds: at most
/// [`LISTED_DIFFERENCES`] lines, each quoting the renderer's names through
/// [`Quoted`]; the rest are only counted. A hostile hello of a few
/// kilobytes cannot make main build (and send) a rejection of megabytes.
#[derive(Debug, Default)]
pub(crate) struct Differences {
    listed: Vec<String>,
    more: usize,
}

impl Differences {
    /// Adds a difference; `line` is only called while fewer than
    /// [`LISTED_DIFFERENCES`] are listed.
    pub(crate) fn push(&mut self, line: impl FnOnce() -> String) {
        if self.listed.len() < LISTED_DIFFERENCES {
            self.listed.push(line());
        } else {
            self.more += 1;
        }
    }

    /// How many differences were pushed, listed or not.
    pub(crate) fn count(&self) -> usize {
        self.listed.len() + self.more
    }

    /// How many differences are listed (the rest are only counted).
    pub(crate) fn listed(&self) -> usize {
        self.listed.len()
    }

    /// The lines, the last one counting those not listed.
    pub(crate) fn into_lines(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("and {} more", self.more));
        }
        self.listed
    }
}

/// A name from a renderer's hello, cut to [`QUOTED_CHARS`] characters
/// (and an ellipsis) when shown in an error, its control characters
/// escaped (`\n`, `\u{1b}`): a hostile name cannot start a new line in
/// main's logs or reach a terminal as an escape sequence.
pub(crate) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Cut(self.0, QUOTED_CHARS).fmt(f)
    }
}

/// Text cut to its number of characters (and an ellipsis), its control
/// characters escaped as [`Escaped`] does: for longer text that may quote
/// a renderer's input, such as what a payload's `Deserialize` said of it.
/// (Cut first, then escaped: an escaped character takes up to ten.)
pub(crate) struct Cut<'a>(pub &'a str, pub usize);

/// What the peer's bytes made a value's own code say (a `Deserialize`'s
/// or `Serialize`'s error, a panic message) is kept to this many
/// characters…
pub(crate) const PEER_TEXT_CHARS: usize = 500;

/// …and escaped ([`Cut`]), once, where the error is made: the text may
/// quote the peer's input (`not an email address: …`), and goes into
/// logs and error messages on both sides.
pub(crate) fn peer_text(text: &str) -> String {
    Cut(text, PEER_TEXT_CHARS).to_string()
}

impl fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = match self.0.char_indices().nth(self.1) {
            None => (self.0, false),
            Some((at, _)) => (&self.0[..at], true),
        };
        Escaped(shown).fmt(f)?;
        if cut {
            f.write_char('…')?;
        }
        Ok(())
    }
}

/// Text shown whole, with every character that could break or disguise
/// a line of a log escaped: control characters (`\n`, `\u{1b}`), the
/// Unicode line and paragraph separators (which some log viewers and
/// JSON tools take for line breaks) and the bidirectional overrides and
/// isolates (which reorder how a line reads).
pub(crate) struct Escaped<'a>(pub &'a str);

/// Whether `c` is escaped by [`Escaped`].
fn disguises_a_line(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if disguises_a_line(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// The namespaces of `renderer`'s and `main`'s versions of one trait, if
/// that is all that differs between their channels: every channel renamed
/// from one namespace to the other, the methods the same.
fn renamed_namespace<'a>(
    renderer: &'a ServiceSummary,
    main: &'a ServiceSummary,
) -> Option<(&'a str, &'a str)> {
    fn split(summary: &ServiceSummary) -> Option<(&str, Vec<&str>)> {
        let mut namespace = None;
        let mut methods = Vec::with_capacity(summary.methods.len());
        for (channel, _) in &summary.methods {
            let (ns, method) = channel.split_once(':')?;
            if *namespace.get_or_insert(ns) != ns {
                return None;
            }
            methods.push(method);
        }
        methods.sort_unstable();
        Some((namespace?, methods))
    }
    let (renderer_ns, renderer_methods) = split(renderer)?;
    let (main_ns, main_methods) = split(main)?;
    (renderer_ns != main_ns && renderer_methods == main_methods).then_some((renderer_ns, main_ns))
}

/// Checks a renderer's services against main's, on every channel: see
/// [`compare_visible`].
pub(crate) fn compare(
    renderer: &[ServiceSummary],
    main: &[ServiceSummary],
) -> Result<(), Mismatch> {
    compare_visible(renderer, main, &|_| true)
}

/// How a renderer's contract differs from main's, as
/// [`compare_visible`] finds it.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// The renderer's fingerprint over the channels compared.
    pub renderer: u64,
    /// Main's, over the same channels.
    pub main: u64,
    /// The differences in words.
    pub differences: Vec<String>,
    /// Main's side of the types that differ, for the renderer to say what
    /// inside them differs ([`refine`]).
    pub shapes: Vec<ShapeNote>,
}

/// Main's wire shapes of the parts of one channel that differ from the
/// renderer's, attached to line `line` of a mismatch's differences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShapeNote {
    pub line: u32,
    pub channel: String,
    /// Main's names of the arguments, if they differ (empty otherwise).
    pub arg_names: Vec<String>,
    /// Each argument's shape if the arguments differ (empty otherwise).
    pub args: Vec<Option<crate::shape::Desc>>,
    /// The result's, if it differs.
    pub output: Option<crate::shape::Desc>,
    /// The typed error's, if it differs.
    pub error: Option<crate::shape::Desc>,
}

/// At most this many nodes of main's shapes go into one rejection, so that
/// its size does not grow with main's types.
const NOTED_NODES: usize = 4 * crate::shape::MAX_NODES;

/// A renderer reads main's notes only from a rejection whose notes take at
/// most this many bytes, and adds at most this many characters to a line:
/// what a main sends cannot make it spend long or grow its error.
pub(crate) const NOTES_BYTES: usize = 256 * 1024;
const DETAIL_CHARS: usize = 400;

/// The differences `mismatch` lists, each that main noted the shapes of
/// made more precise with what differs inside them, as this renderer
/// sees it: its own types are described from `services` and compared with
/// main's. A line takes one note at most, the first for it; a note for a
/// line that is not there, or a channel this renderer does not have, is
/// ignored.
pub(crate) fn refine(
    mut differences: Vec<String>,
    shapes: &[ShapeNote],
    services: &[&ServiceDescriptor],
) -> Vec<String> {
    let mut refined = vec![false; differences.len()];
    for note in shapes {
        let line = note.line as usize;
        if refined.get(line) != Some(&false) {
            continue;
        }
        refined[line] = true;
        let Some(method) = services
            .iter()
            .flat_map(|s| s.methods)
            .find(|m| m.channel == note.channel)
        else {
            continue;
        };
        let mine = (method.describe)();
        let mut found = Vec::new();
        found.extend(diff_args(note, &mine.args, method.args));
        let parts = [
            ("result", &note.output, &mine.output),
            ("error", &note.error, &mine.error),
        ];
        for (root, main, here) in parts {
            if let (Some(main), Some(here)) = (main, here) {
                found.extend(crate::shape::diff(root, main, here));
            }
        }
        let detail = found.join("; ");
        if !detail.is_empty() {
            let line = &mut differences[line];
            let _ = write!(line, "; {}", Cut(&detail, DETAIL_CHARS));
        }
    }
    differences
}

/// Where main's arguments (`note`) and this renderer's (`mine`, named by
/// `args`) differ: their order, if the same names come in another order
/// (names are not on the wire, so only a reorder that changed the types
/// is refused), or else the first argument of the same name and place
/// whose shape differs.
fn diff_args(
    note: &ShapeNote,
    mine: &[Option<crate::shape::Desc>],
    args: &[ArgDescriptor],
) -> Option<String> {
    if note.arg_names.len() != args.len() {
        return None;
    }
    let names: Vec<&str> = args.iter().map(|a| a.name).collect();
    if note.arg_names != names {
        let mut sorted_main: Vec<&str> = note.arg_names.iter().map(String::as_str).collect();
        let mut sorted_here = names.clone();
        sorted_main.sort_unstable();
        sorted_here.sort_unstable();
        return (sorted_main == sorted_here).then(|| {
            format!(
                "the arguments are in another order: main's `{}`, this renderer's `{}`",
                note.arg_names.join(", "),
                names.join(", ")
            )
        });
    }
    if note.args.len() != mine.len() {
        return None;
    }
    note.args
        .iter()
        .zip(mine)
        .zip(args)
        .find_map(|((main, here), arg)| {
            crate::shape::diff(arg.name, main.as_ref()?, here.as_ref()?)
        })
}

/// Checks a renderer's services against main's, on the channels `visible`
/// allows (those main's grant lets the renderer reach: the only ones its
/// calls and events can use). On mismatch, returns both contracts'
/// fingerprints over those channels and the differences in words (see
/// [`Differences`] for how many).
///
/// Nothing is said or compared of other channels, so that a renderer
/// learns nothing of them from a handshake (not their signatures, not
/// whether main has them, not through a fingerprint), as it learns nothing
/// from calling one ([`IpcError::NotAllowed`](crate::IpcError::NotAllowed)).
/// A renderer's service is left out unless it has such channels, or main
/// has a service of that name with such channels.
pub(crate) fn compare_visible(
    renderer: &[ServiceSummary],
    main: &[ServiceSummary],
    visible: &dyn Fn(&str) -> bool,
) -> Result<(), Mismatch> {
    let main: Vec<(ServiceSummary, u64)> = main
        .iter()
        .map(|m| {
            let m = m.only(visible);
            let fingerprint = m.fingerprint();
            (m, fingerprint)
        })
        .collect();
    let mut differences = Differences::default();
    let mut shapes = Vec::new();
    let mut noted_nodes = 0;
    let mut renderer_fps = Vec::with_capacity(renderer.len());
    let mut main_fps = Vec::with_capacity(renderer.len());
    for whole in renderer {
        let r = whole.only(visible);
        let found = main.iter().find(|(m, _)| m.name == r.name);
        if r.methods.is_empty() && found.is_none_or(|(m, _)| m.methods.is_empty()) {
            continue;
        }
        let renderer_fp = r.fingerprint();
        renderer_fps.push(renderer_fp);
        let name = Quoted(&r.name);
        let Some((m, main_fp)) = found else {
            differences.push(|| {
                format!(
                    "`{name}` is not registered on main (register it with `MainBuilder::service`, or `MainBuilder::events` for an events trait)"
                )
            });
            main_fps.push(0);
            continue;
        };
        main_fps.push(*main_fp);
        if *main_fp == renderer_fp {
            continue;
        }
        if let Some((renderer_ns, main_ns)) = renamed_namespace(whole, m) {
            differences.push(|| {
                format!(
                    "trait `{name}`: its namespace is `{}` in the renderer's contract but `{main_ns}` in main's",
                    Quoted(renderer_ns)
                )
            });
            continue;
        }
        let before = differences.count();
        for (channel, parts) in &r.methods {
            match m.methods.iter().position(|(c, _)| c == channel) {
                None => differences.push(|| {
                    format!(
                        "trait `{name}`: channel `{}` exists only in the renderer's contract",
                        Quoted(channel)
                    )
                }),
                Some(i) if &m.methods[i].1 != parts => {
                    let listed = differences.listed();
                    differences.push(|| {
                    // Main's side of each differing part, where main knows
                    // it: the type to look at (a type of the same name may
                    // have gained, lost or changed a field or variant).
                    let signature = m.signatures.get(i);
                    let differing: Vec<String> = PART_NAMES
                        .iter()
                        .enumerate()
                        .zip(parts.iter().zip(&m.methods[i].1))
                        .filter(|(_, (a, b))| a != b)
                        .map(|((part, what), _)| match signature {
                            Some(signature) => format!("{what} ({})", signature.describe(part)),
                            None => what.to_string(),
                        })
                        .collect();
                    // "a", "a and b", "a, b and c".
                    let listed = match differing.split_last() {
                        Some((last, [])) => last.clone(),
                        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                        None => String::new(),
                    };
                    format!(
                        "trait `{name}`: channel `{channel}` has a different signature: not the same {listed}"
                    )
                    });
                    // Noted for a listed line while room is left: past
                    // `NOTED_NODES`, no more descriptions are even copied.
                    let room = differences.listed() > listed && noted_nodes < NOTED_NODES;
                    if let (true, Some(signature)) = (room, m.signatures.get(i)) {
                        let note = note_shapes(listed, channel, signature, parts, &m.methods[i].1);
                        let nodes = note.nodes();
                        if !note.is_empty() && noted_nodes + nodes <= NOTED_NODES {
                            noted_nodes += nodes;
                            shapes.push(note);
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for (channel, _) in &m.methods {
            if !r.methods.iter().any(|(c, _)| c == channel) {
                differences.push(|| {
                    format!("trait `{name}`: channel `{channel}` exists only in main's contract")
                });
            }
        }
        if differences.count() == before {
            differences.push(|| format!("trait `{name}` differs"));
        }
    }
    if differences.count() == 0 {
        Ok(())
    } else {
        Err(Mismatch {
            renderer: combine(renderer_fps),
            main: combine(main_fps),
            differences: differences.into_lines(),
            shapes,
        })
    }
}

/// Main's shapes of the parts of `channel` that differ between the
/// renderer's `parts` and main's, noted for line `line`.
fn note_shapes(
    line: usize,
    channel: &str,
    signature: &Signature,
    parts: &[u64; 4],
    mains: &[u64; 4],
) -> ShapeNote {
    let described = (signature.describe)();
    let differs = |part: usize| parts[part] != mains[part];
    ShapeNote {
        line: line as u32,
        channel: channel.to_string(),
        arg_names: if differs(1) {
            signature.args.iter().map(|a| a.name.to_string()).collect()
        } else {
            Vec::new()
        },
        args: if differs(1) {
            described.args
        } else {
            Vec::new()
        },
        output: described.output.filter(|_| differs(2)),
        error: described.error.filter(|_| differs(3)),
    }
}

impl ShapeNote {
    fn is_empty(&self) -> bool {
        self.args.iter().all(Option::is_none) && self.output.is_none() && self.error.is_none()
    }

    /// How many nodes its shapes hold.
    fn nodes(&self) -> usize {
        let all = self
            .args
            .iter()
            .flatten()
            .chain(&self.output)
            .chain(&self.error);
        all.map(crate::shape::Desc::nodes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: MethodDescriptor = MethodDescriptor {
        name: "get",
        channel: "notes:get",
        kind: MethodKind::Invoke,
        args: &[ArgDescriptor {
            name: "id",
            ty: "u64",
        }],
        output: "Note",
        error: Some("NotesError"),
        shapes: WireShapes::untraced,
        describe: WireDescription::none,
    };

    #[test]
    fn fingerprint_ignores_arg_names_but_not_types() {
        let renamed = MethodDescriptor {
            args: &[ArgDescriptor {
                name: "key",
                ty: "u64",
            }],
            ..GET
        };
        let retyped = MethodDescriptor {
            args: &[ArgDescriptor {
                name: "id",
                ty: "u32",
            }],
            ..GET
        };
        assert_eq!(method_fingerprint(&GET), method_fingerprint(&renamed));
        assert_ne!(method_fingerprint(&GET), method_fingerprint(&retyped));
    }

    /// Traced, the types count by their shapes, not by how they are
    /// written; a type that cannot be traced still counts by name.
    #[test]
    fn traced_types_count_by_shape() {
        let traced = MethodDescriptor {
            shapes: WireShapes::trace::<(u64,), String, u8>,
            ..GET
        };
        let written_otherwise = MethodDescriptor {
            args: &[ArgDescriptor {
                name: "id",
                ty: "core::primitive::u64",
            }],
            output: "std::string::String",
            ..traced
        };
        let other_output = MethodDescriptor {
            shapes: WireShapes::trace::<(u64,), Vec<u8>, u8>,
            ..traced
        };
        let fp = method_fingerprint(&traced);
        assert_ne!(fp, method_fingerprint(&GET));
        assert_eq!(fp, method_fingerprint(&written_otherwise));
        assert_ne!(fp, method_fingerprint(&other_output));
        let untraced_output = || WireShapes {
            output: None,
            ..WireShapes::trace::<(u64,), String, u8>()
        };
        let by_name = MethodDescriptor {
            shapes: untraced_output,
            ..traced
        };
        assert_ne!(fp, method_fingerprint(&by_name));
        assert_ne!(
            method_fingerprint(&by_name),
            method_fingerprint(&MethodDescriptor {
                output: "Other",
                ..by_name
            })
        );
    }

    /// A mismatch says which parts of a signature differ.
    #[test]
    fn compare_names_the_parts_that_differ() {
        let notes = |methods| ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods,
        };
        let diff = |renderer: &'static [MethodDescriptor]| {
            let diffs = compare(
                &[ServiceSummary::of(&notes(renderer))],
                &[ServiceSummary::of(&notes(&[GET]))],
            )
            .unwrap_err()
            .differences;
            diffs[0].clone()
        };
        assert_eq!(
            diff(&[MethodDescriptor {
                kind: MethodKind::Send,
                error: None,
                ..GET
            }]),
            "trait `Notes`: channel `notes:get` has a different signature: not the same kind of method (main's is an invoke) and error type (main's: `NotesError`)"
        );
        assert_eq!(
            diff(&[MethodDescriptor {
                args: &[],
                error: Some("Other"),
                ..GET
            }]),
            "trait `Notes`: channel `notes:get` has a different signature: not the same arguments (main's: `(id: u64)`) and error type (main's: `NotesError`)"
        );
        // Main's typed error, where the renderer has none; a method of
        // main's without arguments.
        let diffs = compare(
            &[ServiceSummary::of(&notes(&[GET]))],
            &[ServiceSummary::of(&notes(&[MethodDescriptor {
                kind: MethodKind::Send,
                args: &[],
                error: None,
                ..GET
            }]))],
        )
        .unwrap_err()
        .differences;
        assert_eq!(
            diffs[0],
            "trait `Notes`: channel `notes:get` has a different signature: not the same kind of method (main's is a send), arguments (main's: `()`) and error type (main's has none)"
        );
    }

    /// A trait whose namespace changed is one line, not one per channel.
    #[test]
    fn compare_names_a_renamed_namespace() {
        const LIST: MethodDescriptor = MethodDescriptor {
            name: "list",
            channel: "notes:list",
            ..GET
        };
        let main = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods: &[GET, LIST],
        };
        let renderer = ServiceDescriptor {
            namespace: "note",
            methods: &[
                MethodDescriptor {
                    channel: "note:list",
                    ..LIST
                },
                MethodDescriptor {
                    channel: "note:get",
                    ..GET
                },
            ],
            ..main
        };
        let diffs = compare(
            &[ServiceSummary::of(&renderer)],
            &[ServiceSummary::of(&main)],
        )
        .unwrap_err()
        .differences;
        assert_eq!(
            diffs,
            [
                "trait `Notes`: its namespace is `note` in the renderer's contract but `notes` in main's"
            ]
        );
        // Another method too: each channel is listed.
        let other = ServiceDescriptor {
            methods: &[MethodDescriptor {
                channel: "note:get",
                ..GET
            }],
            ..renderer
        };
        let diffs = compare(&[ServiceSummary::of(&other)], &[ServiceSummary::of(&main)])
            .unwrap_err()
            .differences;
        assert_eq!(diffs.len(), 3, "{diffs:?}");
    }

    #[test]
    fn compare_names_differing_channels() {
        let a = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods: &[GET],
        };
        let b = ServiceDescriptor {
            methods: &[MethodDescriptor {
                output: "Other",
                ..GET
            }],
            ..a
        };
        let Mismatch {
            renderer: rfp,
            main: mfp,
            differences: diffs,
            ..
        } = compare(&[ServiceSummary::of(&a)], &[ServiceSummary::of(&b)]).unwrap_err();
        assert_ne!(rfp, mfp);
        assert_eq!(
            diffs,
            [
                "trait `Notes`: channel `notes:get` has a different signature: not the same result type (main's: `Other`)"
            ]
        );
        assert!(compare(&[ServiceSummary::of(&a)], &[ServiceSummary::of(&a)]).is_ok());
        let diffs = compare(&[ServiceSummary::of(&a)], &[])
            .unwrap_err()
            .differences;
        assert_eq!(
            diffs,
            ["`Notes` is not registered on main (register it with `MainBuilder::service`, or `MainBuilder::events` for an events trait)"]
        );
    }

    #[test]
    fn a_hostile_hello_gets_a_bounded_list_of_differences() {
        // Far longer than a name is quoted (a hello is at most 1 MiB in
        // all, so this already claims more than main would read).
        let long = "x".repeat(16 * QUOTED_CHARS);
        let many: Vec<ServiceSummary> = (0..10_000)
            .map(|i| ServiceSummary {
                name: format!("{long}{i}"),
                methods: vec![(format!("{long}{i}:m"), [0; 4])],
                signatures: Vec::new(),
            })
            .collect();
        let diffs = compare(&many, &[]).unwrap_err().differences;
        assert_eq!(diffs.len(), LISTED_DIFFERENCES + 1);
        assert_eq!(
            diffs.last().unwrap(),
            &format!("and {} more", 10_000 - LISTED_DIFFERENCES)
        );
        let quoted = format!("`{}…`", "x".repeat(QUOTED_CHARS));
        assert!(diffs[0].starts_with(&quoted), "{}", diffs[0]);
        assert!(diffs.iter().map(String::len).sum::<usize>() < 8 * 1024);

        // Many channels of one known service, none of them main's.
        let notes = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods: &[GET],
        };
        let mut wide = ServiceSummary::of(&notes);
        wide.methods = (0..10_000)
            .map(|i| (format!("{long}{i}"), [0; 4]))
            .collect();
        let diffs = compare(&[wide], &[ServiceSummary::of(&notes)])
            .unwrap_err()
            .differences;
        assert_eq!(diffs.len(), LISTED_DIFFERENCES + 1);
        assert_eq!(diffs[LISTED_DIFFERENCES], "and 9985 more");
        assert!(diffs.iter().map(String::len).sum::<usize>() < 8 * 1024);
    }

    /// A struct of `fields` `u64` fields, described: main's side of
    /// `notes:get`'s argument in the tests below.
    fn wide_struct(fields: usize) -> crate::shape::Desc {
        crate::shape::Desc::Struct(
            (0..fields)
                .map(|i| (format!("f{i}"), crate::shape::Desc::Prim("u64".into())))
                .collect(),
        )
    }

    fn described_wide() -> WireDescription {
        WireDescription {
            args: vec![Some(wide_struct(crate::shape::MAX_NODES - 1))],
            output: None,
            error: None,
        }
    }

    /// Main notes its shapes of the arguments that differ, for the line
    /// that names them; however many channels differ, what it notes stays
    /// within `NOTED_NODES` in all.
    #[test]
    fn main_notes_its_shapes_of_what_differs_within_a_bound() {
        let methods: &'static [MethodDescriptor] = Box::leak(
            (0..16)
                .map(|i| MethodDescriptor {
                    channel: Box::leak(format!("notes:m{i:02}").into_boxed_str()),
                    describe: described_wide,
                    ..GET
                })
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let notes = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods,
        };
        let mut renderer = ServiceSummary::of(&notes);
        for (_, parts) in &mut renderer.methods {
            parts[1] ^= 1;
        }
        let mismatch = compare(&[renderer], &[ServiceSummary::of(&notes)]).unwrap_err();
        assert_eq!(mismatch.differences.len(), 16);
        let noted: Vec<u32> = mismatch.shapes.iter().map(|n| n.line).collect();
        assert_eq!(
            noted,
            [0, 1, 2, 3],
            "four of 512 nodes fit in {NOTED_NODES}"
        );
        assert!(mismatch.shapes.iter().map(ShapeNote::nodes).sum::<usize>() <= NOTED_NODES);
        let first = &mismatch.shapes[0];
        assert_eq!(first.channel, "notes:m00");
        assert_eq!((first.output.as_ref(), first.error.as_ref()), (None, None));
    }

    /// A renderer refines only the lines a note fits, each once: a note
    /// for a line that is not there, a line already refined, a channel it
    /// does not have, or another number of arguments leaves the line as
    /// main wrote it; and what it adds is bounded.
    #[test]
    fn a_renderer_refines_only_the_lines_a_note_fits() {
        fn narrower() -> WireDescription {
            WireDescription {
                args: vec![Some(wide_struct(2))],
                output: None,
                error: None,
            }
        }
        static MINE: [MethodDescriptor; 1] = [MethodDescriptor {
            describe: narrower,
            ..GET
        }];
        let notes = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods: &MINE,
        };
        let note = |line, channel: &str, args: Vec<Option<crate::shape::Desc>>| ShapeNote {
            line,
            channel: channel.into(),
            arg_names: vec!["id".into(); args.len()],
            args,
            output: None,
            error: None,
        };
        let lines = vec!["a".to_string(), "b".to_string()];
        let main_side = vec![Some(wide_struct(3))];
        let mut notes_sent = vec![
            note(1, "notes:get", main_side.clone()),
            note(7, "notes:get", main_side.clone()),
            note(0, "notes:other", main_side.clone()),
            note(0, "notes:get", vec![None, None]),
            note(0, "notes:get", main_side.clone()),
        ];
        // As many more for line 1 as a hostile main likes: one is read.
        notes_sent.extend((0..100_000).map(|_| note(1, "notes:get", main_side.clone())));
        let refined = refine(lines.clone(), &notes_sent, &[&notes]);
        assert_eq!(refined, ["a", "b; at `id`, field `f2` only in main's"]);

        // A detail of a struct whose fields are all different is cut.
        let named = |prefix: &str| {
            crate::shape::Desc::Struct(
                (0..200)
                    .map(|i| (format!("{prefix}{i}"), crate::shape::Desc::Unit))
                    .collect(),
            )
        };
        let refined = refine(
            vec!["c".into()],
            &[note(0, "notes:get", vec![Some(named("main_only_field_"))])],
            &[&notes],
        );
        assert!(
            refined[0].chars().count() <= 3 + DETAIL_CHARS + 1,
            "{}",
            refined[0]
        );
        assert!(refined[0].ends_with('…'), "{}", refined[0]);
    }

    /// The same arguments in another order (which changes their types on
    /// the wire) are named as such, not compared by place.
    #[test]
    fn arguments_in_another_order_are_named() {
        static MINE: [MethodDescriptor; 1] = [MethodDescriptor {
            args: &[
                ArgDescriptor {
                    name: "label",
                    ty: "String",
                },
                ArgDescriptor {
                    name: "count",
                    ty: "u32",
                },
            ],
            ..GET
        }];
        let notes = ServiceDescriptor {
            name: "Notes",
            namespace: "notes",
            methods: &MINE,
        };
        let prim = |name: &str| Some(crate::shape::Desc::Prim(name.into()));
        let swapped = ShapeNote {
            line: 0,
            channel: "notes:get".into(),
            arg_names: vec!["count".into(), "label".into()],
            args: vec![prim("u32"), prim("str")],
            output: None,
            error: None,
        };
        // Descriptions only matter once the names agree.
        let refined = refine(vec!["x".into()], &[swapped], &[&notes]);
        assert_eq!(
            refined,
            ["x; the arguments are in another order: main's `count, label`, this renderer's `label, count`"]
        );
    }

    #[test]
    fn quoted_names_are_cut_on_a_character_boundary() {
        assert_eq!(Quoted("notes").to_string(), "notes");
        let exact = "é".repeat(QUOTED_CHARS);
        assert_eq!(Quoted(&exact).to_string(), exact);
        let long = "é".repeat(QUOTED_CHARS + 1);
        assert_eq!(Quoted(&long).to_string(), format!("{exact}…"));
    }

    #[test]
    fn quoted_names_cannot_break_a_log_line() {
        assert_eq!(
            Quoted("api\n2026 ERROR forged\r\u{1b}[31m\u{85}").to_string(),
            "api\\n2026 ERROR forged\\r\\u{1b}[31m\\u{85}"
        );
        // Unicode's line and paragraph separators, and the marks that
        // reorder how a line reads, are escaped too; other text is not.
        assert_eq!(
            Escaped("a\u{2028}b\u{2029}c\u{202e}d\u{2066}e\u{200f}f é 字").to_string(),
            "a\\u{2028}b\\u{2029}c\\u{202e}d\\u{2066}e\\u{200f}f é 字"
        );
    }
}
