//! A traced wire shape as a tree ([`Desc`]) that can cross the wire, be
//! shown in a few words ([`Desc::render`]) and be compared with another
//! ([`diff`]), so that a handshake mismatch can name the field, variant or
//! element that differs, not only the type around it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// How many nodes of a value are described at most; what lies beyond is
/// [`Desc::Skipped`]. Keeps a handshake rejection small whatever the types.
pub(crate) const MAX_NODES: usize = 512;

/// How deeply nested a description goes at most; what lies deeper is
/// [`Desc::Skipped`]. The renderer decodes main's descriptions through the
/// codec's guard, which refuses values nested more than 128 levels (each
/// level of a description takes two or three).
pub(crate) const MAX_DEPTH: usize = 24;

/// What [`Desc::render`] writes at most, in characters.
const RENDERED_CHARS: usize = 120;

/// The wire shape of a value, as traced (see the parent module): what the
/// encoding holds, with struct field and enum variant names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Desc {
    /// A primitive, by serde's name for it (`u8`, `str`, …); a byte
    /// buffer is a sequence of `u8`, as bincode writes it.
    Prim(String),
    /// `()`, a unit struct.
    Unit,
    Option(Box<Desc>),
    Seq(Box<Desc>),
    Map(Box<Desc>, Box<Desc>),
    /// A tuple, tuple struct or array; a newtype struct is its content.
    Tuple(Vec<Desc>),
    /// A tuple of this many elements of one shape (an array, say), so that
    /// `[[u8; 32]; 32]` takes two nodes, not a thousand.
    Array(Box<Desc>, u32),
    Struct(Vec<(String, Desc)>),
    /// An enum: its type's name (shown, not compared) and its variants.
    Enum(String, Vec<(String, VariantDesc)>),
    /// A value of a type already described around it: its name.
    Recursive(String),
    /// Not described: inside a recursive value, or past [`MAX_NODES`].
    Skipped,
}

/// One variant of a [`Desc::Enum`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum VariantDesc {
    /// Never made while tracing (a type whose `Deserialize` skips it).
    Unseen,
    Unit,
    Newtype(Desc),
    Tuple(Vec<Desc>),
    Struct(Vec<(String, Desc)>),
}

impl Desc {
    /// How many nodes it holds, [`Desc::Skipped`] ones included.
    pub(crate) fn nodes(&self) -> usize {
        let all = |parts: &[Desc]| parts.iter().map(Desc::nodes).sum::<usize>();
        let fields =
            |fields: &[(String, Desc)]| fields.iter().map(|(_, d)| d.nodes()).sum::<usize>();
        1 + match self {
            Desc::Prim(_) | Desc::Unit | Desc::Recursive(_) | Desc::Skipped => 0,
            Desc::Option(inner) | Desc::Seq(inner) | Desc::Array(inner, _) => inner.nodes(),
            Desc::Map(key, value) => key.nodes() + value.nodes(),
            Desc::Tuple(parts) => all(parts),
            Desc::Struct(list) => fields(list),
            Desc::Enum(_, variants) => variants
                .iter()
                .map(|(_, v)| match v {
                    VariantDesc::Unseen | VariantDesc::Unit => 0,
                    VariantDesc::Newtype(inner) => inner.nodes(),
                    VariantDesc::Tuple(parts) => all(parts),
                    VariantDesc::Struct(list) => fields(list),
                })
                .sum(),
        }
    }

    /// The shape in a few words, at most [`RENDERED_CHARS`] characters:
    /// `{from: String, cents: u64}`, `[u8]`, `Option<String>`,
    /// `enum Notice`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        if out.chars().count() > RENDERED_CHARS {
            out = out.chars().take(RENDERED_CHARS - 1).collect();
            out.push('…');
        }
        out
    }

    fn write(&self, out: &mut String) {
        // Past what will be shown, stop: a large type is not written out.
        if out.len() > RENDERED_CHARS * 4 {
            return;
        }
        match self {
            // Serde's `str` is what a `String` asks for, too.
            Desc::Prim(name) if name == "str" => out.push_str("String"),
            Desc::Prim(name) => out.push_str(name),
            Desc::Unit => out.push_str("()"),
            Desc::Option(inner) => {
                out.push_str("Option<");
                inner.write(out);
                out.push('>');
            }
            Desc::Seq(item) => {
                out.push('[');
                item.write(out);
                out.push(']');
            }
            Desc::Map(key, value) => {
                out.push_str("Map<");
                key.write(out);
                out.push_str(", ");
                value.write(out);
                out.push('>');
            }
            Desc::Tuple(parts) => {
                out.push('(');
                write_list(out, parts.iter().map(|p| (None, p)));
                out.push(')');
            }
            Desc::Array(item, len) => {
                out.push('[');
                item.write(out);
                let _ = write!(out, "; {len}]");
            }
            Desc::Struct(fields) => write_fields(out, fields),
            Desc::Enum(name, _) => {
                let _ = write!(out, "enum {name}");
            }
            Desc::Recursive(name) => out.push_str(name),
            Desc::Skipped => out.push('…'),
        }
    }
}

fn write_fields(out: &mut String, fields: &[(String, Desc)]) {
    out.push('{');
    write_list(out, fields.iter().map(|(name, d)| (Some(name.as_str()), d)));
    out.push('}');
}

fn write_list<'a>(out: &mut String, items: impl Iterator<Item = (Option<&'a str>, &'a Desc)>) {
    for (i, (name, item)) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(name) = name {
            let _ = write!(out, "{name}: ");
        }
        item.write(out);
    }
}

/// Where in a value a difference is, as a path from its root: `transfer`,
/// `transfer.cents`, `items[_].price`, `notice::Refund.0`.
/// `root` while no step has been taken.
struct Path(String, bool);

impl Path {
    fn with(&self, step: impl std::fmt::Display) -> Path {
        Path(format!("{}{step}", self.0), false)
    }
}

/// The first difference between main's shape of a value and this side's,
/// in words, or `None` if none is found (the two are the same, or differ
/// only where one was not described). `root` names the value (an
/// argument's name, `result`, `error`).
///
/// ```text
/// at `transfer.cents`, main's is `u64` and this renderer's `i64`
/// ```
pub(crate) fn diff(root: &str, main: &Desc, here: &Desc) -> Option<String> {
    diff_at(&Path(root.to_string(), true), main, here)
}

fn diff_at(at: &Path, main: &Desc, here: &Desc) -> Option<String> {
    let path = &at.0;
    match (main, here) {
        (Desc::Skipped, _) | (_, Desc::Skipped) => None,
        (Desc::Option(a), Desc::Option(b)) => diff_at(at, a, b),
        (Desc::Seq(a), Desc::Seq(b)) => diff_at(&at.with("[_]"), a, b),
        (Desc::Map(ka, va), Desc::Map(kb, vb)) => {
            diff_at(&at.with("[key]"), ka, kb).or_else(|| diff_at(&at.with("[_]"), va, vb))
        }
        (Desc::Array(_, n), Desc::Array(_, m)) if n != m => Some(format!(
            "at `{path}`, main's has {n} elements and this renderer's {m}"
        )),
        (Desc::Array(a, _), Desc::Array(b, _)) => diff_at(&at.with("[_]"), a, b),
        (Desc::Tuple(a), Desc::Tuple(b)) if a.len() != b.len() => Some(format!(
            "at `{path}`, main's has {} elements and this renderer's {}",
            a.len(),
            b.len()
        )),
        (Desc::Tuple(a), Desc::Tuple(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (a, b))| diff_at(&at.with(format_args!(".{i}")), a, b)),
        (Desc::Struct(a), Desc::Struct(b)) => diff_fields(at, "field", a, b),
        (Desc::Enum(_, a), Desc::Enum(_, b)) => diff_variants(at, a, b),
        _ if main == here => None,
        // The line already quotes main's type for the whole value.
        _ if at.1 => Some(format!(
            "`{path}` is `{}` in this renderer's",
            here.render()
        )),
        _ => Some(format!(
            "at `{path}`, main's is `{}` and this renderer's `{}`",
            main.render(),
            here.render()
        )),
    }
}

/// Names the parts (fields of a struct, or of a struct variant) only one
/// side has, or the order they are in, or else the first part whose shape
/// differs.
fn diff_fields(
    at: &Path,
    what: &str,
    main: &[(String, Desc)],
    here: &[(String, Desc)],
) -> Option<String> {
    let names =
        |fields: &[(String, Desc)]| fields.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    diff_names(at, what, &names(main), &names(here)).or_else(|| {
        main.iter()
            .zip(here)
            .find_map(|((name, a), (_, b))| diff_at(&at.with(format_args!(".{name}")), a, b))
    })
}

fn diff_variants(
    at: &Path,
    main: &[(String, VariantDesc)],
    here: &[(String, VariantDesc)],
) -> Option<String> {
    let names =
        |vs: &[(String, VariantDesc)]| vs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if let Some(found) = diff_names(at, "variant", &names(main), &names(here)) {
        return Some(found);
    }
    let path = &at.0;
    main.iter().zip(here).find_map(|((name, a), (_, b))| {
        let at = at.with(format_args!("::{name}"));
        match (a, b) {
            (VariantDesc::Unseen, _) | (_, VariantDesc::Unseen) => None,
            (VariantDesc::Unit, VariantDesc::Unit) => None,
            (VariantDesc::Newtype(a), VariantDesc::Newtype(b)) => diff_at(&at, a, b),
            (VariantDesc::Tuple(a), VariantDesc::Tuple(b)) => {
                diff_at(&at, &Desc::Tuple(a.clone()), &Desc::Tuple(b.clone()))
            }
            (VariantDesc::Struct(a), VariantDesc::Struct(b)) => diff_fields(&at, "field", a, b),
            (a, b) => Some(format!(
                "at `{path}::{name}`, main's variant is {} and this renderer's {}",
                variant_kind(a),
                variant_kind(b)
            )),
        }
    })
}

fn variant_kind(v: &VariantDesc) -> &'static str {
    match v {
        VariantDesc::Unseen => "unknown",
        VariantDesc::Unit => "a unit variant",
        VariantDesc::Newtype(_) => "a newtype variant",
        VariantDesc::Tuple(_) => "a tuple variant",
        VariantDesc::Struct(_) => "a struct variant",
    }
}

/// The names only one side has, or, with the same names, their order.
fn diff_names(at: &Path, what: &str, main: &[String], here: &[String]) -> Option<String> {
    if main == here {
        return None;
    }
    let path = &at.0;
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|n| !b.contains(n))
            .map(|n| format!("`{n}`"))
            .collect()
    };
    let (main_only, here_only) = (only(main, here), only(here, main));
    let side = |names: &[String], whose: &str| match names.len() {
        0 => None,
        1 => Some(format!("{what} {} only in {whose}", names[0])),
        _ => Some(format!("{what}s {} only in {whose}", names.join(", "))),
    };
    let said: Vec<String> = [
        side(&main_only, "main's"),
        side(&here_only, "this renderer's"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if said.is_empty() {
        let order = |names: &[String]| names.join(", ");
        return Some(format!(
            "at `{path}`, the {what}s are in another order: main's `{}`, this renderer's `{}`",
            order(main),
            order(here)
        ));
    }
    Some(format!("at `{path}`, {}", said.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prim(name: &str) -> Desc {
        Desc::Prim(name.into())
    }

    fn fields(list: &[(&str, Desc)]) -> Vec<(String, Desc)> {
        list.iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect()
    }

    fn transfer(cents: Desc) -> Desc {
        Desc::Struct(fields(&[
            ("from", prim("str")),
            ("to", prim("str")),
            ("cents", cents),
        ]))
    }

    #[test]
    fn a_retyped_field_is_named_with_both_types() {
        assert_eq!(
            diff("transfer", &transfer(prim("u64")), &transfer(prim("i64"))).as_deref(),
            Some("at `transfer.cents`, main's is `u64` and this renderer's `i64`")
        );
        assert_eq!(
            diff("transfer", &transfer(prim("u64")), &transfer(prim("u64"))),
            None
        );
    }

    #[test]
    fn added_removed_and_moved_fields_are_named() {
        let main = transfer(prim("u64"));
        let mut extra = fields(&[
            ("from", prim("str")),
            ("to", prim("str")),
            ("cents", prim("u64")),
        ]);
        extra.push(("memo".into(), prim("str")));
        assert_eq!(
            diff("t", &main, &Desc::Struct(extra)).as_deref(),
            Some("at `t`, field `memo` only in this renderer's")
        );
        let renamed = Desc::Struct(fields(&[
            ("from", prim("str")),
            ("to", prim("str")),
            ("amount", prim("u64")),
        ]));
        assert_eq!(
            diff("t", &main, &renamed).as_deref(),
            Some("at `t`, field `cents` only in main's; field `amount` only in this renderer's")
        );
        let moved = Desc::Struct(fields(&[
            ("to", prim("str")),
            ("from", prim("str")),
            ("cents", prim("u64")),
        ]));
        assert_eq!(
            diff("t", &main, &moved).as_deref(),
            Some("at `t`, the fields are in another order: main's `from, to, cents`, this renderer's `to, from, cents`")
        );
    }

    #[test]
    fn the_path_goes_through_collections_tuples_and_variants() {
        let list = |cents| Desc::Option(Box::new(Desc::Seq(Box::new(transfer(cents)))));
        assert_eq!(
            diff("batch", &list(prim("u64")), &list(prim("u32"))).as_deref(),
            Some("at `batch[_].cents`, main's is `u64` and this renderer's `u32`")
        );
        let map = |v| Desc::Map(Box::new(prim("str")), Box::new(v));
        assert_eq!(
            diff("by_name", &map(prim("u8")), &map(prim("u16"))).as_deref(),
            Some("at `by_name[_]`, main's is `u8` and this renderer's `u16`")
        );
        let pair = |b| Desc::Tuple(vec![prim("u8"), b]);
        assert_eq!(
            diff(
                "pair",
                &pair(prim("str")),
                &pair(Desc::Seq(Box::new(prim("u8"))))
            )
            .as_deref(),
            Some("at `pair.1`, main's is `String` and this renderer's `[u8]`")
        );
        let notice = |refund: VariantDesc| {
            Desc::Enum(
                "Notice".into(),
                vec![
                    ("Paid".into(), VariantDesc::Unit),
                    ("Refund".into(), refund),
                ],
            )
        };
        assert_eq!(
            diff(
                "notice",
                &notice(VariantDesc::Struct(fields(&[("cents", prim("u64"))]))),
                &notice(VariantDesc::Struct(fields(&[("cents", prim("i64"))])))
            )
            .as_deref(),
            Some("at `notice::Refund.cents`, main's is `u64` and this renderer's `i64`")
        );
        assert_eq!(
            diff("notice", &notice(VariantDesc::Unit), &notice(VariantDesc::Newtype(prim("u64")))).as_deref(),
            Some("at `notice::Refund`, main's variant is a unit variant and this renderer's a newtype variant")
        );
        let more = Desc::Enum(
            "Notice".into(),
            vec![
                ("Paid".into(), VariantDesc::Unit),
                ("Refund".into(), VariantDesc::Unit),
                ("Void".into(), VariantDesc::Unit),
            ],
        );
        assert_eq!(
            diff("notice", &notice(VariantDesc::Unit), &more).as_deref(),
            Some("at `notice`, variant `Void` only in this renderer's")
        );
    }

    #[test]
    fn what_was_not_described_hides_no_difference_and_invents_none() {
        assert_eq!(diff("x", &Desc::Skipped, &prim("u8")), None);
        let a = Desc::Tuple(vec![Desc::Skipped, prim("u8")]);
        let b = Desc::Tuple(vec![prim("str"), prim("u16")]);
        assert_eq!(
            diff("x", &a, &b).as_deref(),
            Some("at `x.1`, main's is `u8` and this renderer's `u16`")
        );
    }

    #[test]
    fn rendering_is_short() {
        assert_eq!(
            transfer(prim("u64")).render(),
            "{from: String, to: String, cents: u64}"
        );
        let wide = Desc::Struct(
            (0..100)
                .map(|i| (format!("field_{i}"), prim("u64")))
                .collect(),
        );
        let shown = wide.render();
        assert_eq!(shown.chars().count(), RENDERED_CHARS);
        assert!(shown.ends_with('…'));
    }
}
