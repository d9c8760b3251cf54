//! Identifier formats.
//!
//! CPH resources (servers, phones, jobs, requests, encode servers, bandwidths) use 32 lowercase hex
//! characters; VPC-style resources (VPCs, subnets) use hyphenated UUIDs, as their APIs do.

use uuid::Uuid;

/// A new 32-character lowercase hex identifier (servers, phones, jobs, request ids).
pub fn hex_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A new hyphenated UUID (VPCs, subnets, domains, users).
pub fn uuid_id() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// True when `s` has the shape of a CPH resource id: 1–64 characters of `[0-9a-zA-Z-_]`.
/// The reference caps ids at 32 bytes for servers and phones; callers check the exact cap.
pub fn looks_like_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A 15-digit IMEI whose last digit is the Luhn check digit of the first 14.
/// `tac_serial` supplies the 14 leading digits (type allocation code + serial).
pub fn imei_from_digits(tac_serial: &str) -> Option<String> {
    if tac_serial.len() != 14 || !tac_serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let check = luhn_check_digit(tac_serial);
    Some(format!("{tac_serial}{check}"))
}

/// The Luhn check digit for a string of decimal digits.
pub fn luhn_check_digit(digits: &str) -> u8 {
    let mut sum = 0u32;
    // Double every second digit starting from the rightmost digit of the payload.
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    ((10 - (sum % 10)) % 10) as u8
}

/// True when `imei` is 15 digits with a valid Luhn check digit.
pub fn imei_is_valid(imei: &str) -> bool {
    imei.len() == 15
        && imei.bytes().all(|b| b.is_ascii_digit())
        && luhn_check_digit(&imei[..14]) == imei.as_bytes()[14] - b'0'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_matches_known_imei() {
        // 49015420323751 -> check digit 8 (a commonly cited IMEI example).
        assert_eq!(luhn_check_digit("49015420323751"), 8);
        assert!(imei_is_valid("490154203237518"));
        assert!(!imei_is_valid("490154203237519"));
        assert_eq!(
            imei_from_digits("35209900176148").as_deref(),
            Some("352099001761481")
        );
    }

    #[test]
    fn ids_have_expected_shapes() {
        let h = hex_id();
        assert_eq!(h.len(), 32);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(uuid_id().len(), 36);
        assert!(looks_like_id(&h));
        assert!(!looks_like_id("a/b"));
        assert!(!looks_like_id(""));
    }
}
