//! Validation of account input. Each failure names the field.

use sdsim_runtime::error::ServiceError;

/// bcrypt reads at most 72 bytes; longer passwords would be silently truncated, so sdsim
/// refuses them.
pub const MAX_PASSWORD_BYTES: usize = 72;
pub const MIN_PASSWORD_CHARS: usize = 8;
const MAX_EMAIL: usize = 254;
const MAX_NAME: usize = 100;
const MAX_COMPANY: usize = 200;

/// Trims and lower-cases an e-mail address, and checks its shape.
pub fn email(raw: &str) -> Result<String, ServiceError> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err(ServiceError::invalid("email", "email is required"));
    }
    if e.len() > MAX_EMAIL {
        return Err(ServiceError::invalid(
            "email",
            format!("email must be at most {MAX_EMAIL} characters"),
        ));
    }
    let valid = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && e.chars().all(|c| !c.is_whitespace() && !c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(ServiceError::invalid(
            "email",
            "email must look like name@example.com",
        ));
    }
    Ok(e)
}

/// Checks a new password's length (in characters and bcrypt bytes).
pub fn new_password(p: &str) -> Result<(), ServiceError> {
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServiceError::invalid(
            "password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    login_password(p)
}

/// Refuses a password that a strength estimator (zxcvbn: dictionaries, common passwords,
/// keyboard patterns, dates, the user's own name and e-mail) scores below `min_score`
/// (0..=4), with the estimator's reason. Call after [`new_password`].
pub fn password_strength(p: &str, user_inputs: &[&str], min_score: u8) -> Result<(), ServiceError> {
    let estimate = zxcvbn::zxcvbn(p, user_inputs);
    let score: u8 = estimate.score().into();
    if score >= min_score {
        return Ok(());
    }
    let mut why: Vec<String> = Vec::new();
    if let Some(f) = estimate.feedback() {
        if let Some(w) = f.warning() {
            why.push(w.to_string());
        }
        why.extend(f.suggestions().iter().map(|s| s.to_string()));
    }
    if why.is_empty() {
        why.push("it would be guessed quickly".into());
    }
    Err(ServiceError::invalid(
        "password",
        format!(
            "password is too weak (strength {score} of 4, at least {min_score} needed): {}",
            why.join(" ")
        ),
    ))
}

/// A password presented at login: only the byte limit (so nothing is silently truncated).
pub fn login_password(p: &str) -> Result<(), ServiceError> {
    if p.is_empty() {
        return Err(ServiceError::invalid("password", "password is required"));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(ServiceError::invalid(
            "password",
            format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores anything longer); this one is {} bytes",
                p.len()
            ),
        ));
    }
    if p.contains('\0') {
        return Err(ServiceError::invalid(
            "password",
            "password must not contain NUL characters",
        ));
    }
    Ok(())
}

/// A required personal name, trimmed.
pub fn name(field: &str, raw: &str) -> Result<String, ServiceError> {
    let n = raw.trim();
    if n.is_empty() {
        return Err(ServiceError::invalid(field, format!("{field} is required")));
    }
    if n.chars().count() > MAX_NAME {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must be at most {MAX_NAME} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(n.to_string())
}

/// An optional company name; blank means none.
pub fn company(raw: Option<&str>) -> Result<Option<String>, ServiceError> {
    let Some(c) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if c.chars().count() > MAX_COMPANY {
        return Err(ServiceError::invalid(
            "company",
            format!("company must be at most {MAX_COMPANY} characters"),
        ));
    }
    if c.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "company",
            "company must not contain control characters",
        ));
    }
    Ok(Some(c.to_string()))
}

#[cfg(test)]
mod strength_tests {
    use super::password_strength;

    #[test]
    fn common_and_personal_passwords_are_refused_with_a_reason() {
        for weak in [
            "password123",
            "qwertyuiop",
            "Password1!",
            "iloveyou2",
            "aaaaaaaaaaaa",
        ] {
            let e = password_strength(weak, &[], 3).unwrap_err();
            assert_eq!(e.field(), Some("password"), "{weak}");
            assert!(e.to_string().contains("too weak"), "{weak}: {e}");
        }
        // The user's own name is no secret.
        let e = password_strength("lovelace1815", &["ada", "lovelace", "ada@example.com"], 3);
        assert!(e.is_err());
    }

    #[test]
    fn strong_passwords_pass() {
        for strong in [
            "correct horse battery staple",
            "a long enough password",
            "another password 1",
            "tr0ub4dor&3-xylophone",
        ] {
            assert!(password_strength(strong, &[], 3).is_ok(), "{strong}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<impl std::fmt::Debug, ServiceError>) -> String {
        r.unwrap_err().field().unwrap().to_string()
    }

    #[test]
    fn emails() {
        assert_eq!(email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b..com",
        ] {
            assert_eq!(field(email(bad)), "email", "{bad:?} should be refused");
        }
        assert!(email(&format!("{}@x.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn passwords_between_8_chars_and_72_bytes() {
        assert!(new_password("correct horse").is_ok());
        assert_eq!(field(new_password("short")), "password");
        assert!(new_password(&"x".repeat(72)).is_ok());
        let err = new_password(&"x".repeat(73)).unwrap_err();
        assert!(err.to_string().contains("72 bytes"), "{err}");
        // 8 characters but 4 bytes each: 32 bytes, fine; 19 of them: 76 bytes, refused
        assert!(new_password(&"😀".repeat(8)).is_ok());
        assert!(new_password(&"😀".repeat(19)).is_err());
        assert!(new_password("abc\0defgh").is_err());
    }

    #[test]
    fn names_and_company() {
        assert_eq!(name("first_name", "  Ada ").unwrap(), "Ada");
        assert_eq!(field(name("last_name", "   ")), "last_name");
        assert_eq!(field(name("first_name", &"a".repeat(101))), "first_name");
        assert_eq!(company(Some("  ")).unwrap(), None);
        assert_eq!(company(None).unwrap(), None);
        assert_eq!(field(company(Some(&"c".repeat(201)))), "company");
    }
}
