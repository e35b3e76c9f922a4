//! Channel naming: the allowed pattern and the kebab-case conversion.

/// The pattern every namespace and method part of a channel must match, as
/// shown to users in error messages.
pub const NAME_PATTERN: &str =
    "lowercase ASCII letters and digits in words joined by single '-', starting with a letter (like `notes` or `get-user`)";

/// Channel parts longer than this are refused, so that a channel always fits
/// the wire format's one-byte length with room to spare.
pub const MAX_PART_LEN: usize = 64;

/// Names the generated client uses for its own methods, which therefore
/// cannot name a trait method.
pub const CLIENT_RESERVED: &[&str] = &["new", "with_timeout", "__new"];

/// Why a namespace or channel part is not valid, in words for a user.
pub fn check_part(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.contains(':') {
        return Err(
            "it contains ':', which the macro itself puts between the namespace and the method"
                .into(),
        );
    }
    if name.len() > MAX_PART_LEN {
        return Err(format!(
            "it is {} bytes long; the limit is {MAX_PART_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        let what = match c {
            ' ' => "a space".to_string(),
            'A'..='Z' => format!("an uppercase letter `{c}`"),
            '_' => "an underscore (use '-' between words)".to_string(),
            _ => format!("the character `{c}`"),
        };
        return Err(format!("it contains {what}"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it does not start with a letter".into());
    }
    if name.ends_with('-') || name.contains("--") {
        return Err("its words are not joined by single '-'".into());
    }
    Ok(())
}

/// `get_user` → `get-user`; a raw identifier loses its `r#`.
pub fn kebab_case(ident: &str) -> String {
    ident
        .trim_start_matches("r#")
        .trim_matches('_')
        .replace('_', "-")
}

/// `UserSettings` → `user_settings`, for suggesting a namespace.
pub fn snake_case(ident: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in ident.trim_start_matches("r#").chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `get_user` → `GET_USER`, for the channel constant's name.
pub fn screaming_snake_case(ident: &str) -> String {
    ident.trim_start_matches("r#").to_ascii_uppercase()
}

/// The module `#[service]` and `#[events]` generate next to trait `name`,
/// and that `expose!` reaches: `Notes` → `notes_methods`.
pub fn methods_module(name: &proc_macro2::Ident) -> proc_macro2::Ident {
    quote::format_ident!(
        "{}_methods",
        snake_case(name.to_string().trim_start_matches("r#")),
        span = proc_macro2::Span::call_site()
    )
}

/// A listener's method for an event: `prefix` (`on`, `stream`) and the
/// event's name without `r#`: `on_changed`, `stream_type`.
pub fn listener_method(prefix: &str, event: &proc_macro2::Ident) -> proc_macro2::Ident {
    quote::format_ident!("{prefix}_{}", event.to_string().trim_start_matches("r#"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_parts() {
        for ok in ["notes", "get-user", "a1", "v2-beta"] {
            assert_eq!(check_part(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "Notes", "get user", "get_user", "1st", "a:b", "a-", "a--b", "-a",
        ] {
            assert!(check_part(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn case_conversions() {
        assert_eq!(kebab_case("get_user"), "get-user");
        assert_eq!(kebab_case("r#type"), "type");
        assert_eq!(screaming_snake_case("get_user"), "GET_USER");
        assert_eq!(snake_case("UserSettings"), "user_settings");
        assert_eq!(snake_case("HTTPApi"), "httpapi");
    }
}
