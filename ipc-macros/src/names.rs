//! Channel naming: the allowed pattern and the kebab-case conversion.

/// The pattern every namespace and method part of a channel must match, as
/// shown to users in error messages.
pub const NAME_PATTERN: &str =
    "lowercase ASCII letters and digits in words joined by single '-', starting with a letter (like `notes` or `get-user`)";

/// Channel parts longer than this are refused, so that a channel always fits
/// the wire format's one-byte length with room to spare.
pub const MAX_PART_LEN: usize = 64;

/// Why a namespace or channel part is not valid, in words for a user.
pub fn check_part(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.contains(':') {
        return Err(
            "it contains ':', which separates the namespace from the method; give only this part"
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

/// `get_user` → `GET_USER`, for the channel constant's name.
pub fn screaming_snake_case(ident: &str) -> String {
    ident.trim_start_matches("r#").to_ascii_uppercase()
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
    }
}
