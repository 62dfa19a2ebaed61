//! Exact DynamoDB numbers.
//!
//! DynamoDB stores a number as a decimal string with up to 38 significant
//! digits and an exponent between -130 and +125. Nothing here goes through
//! `f64`: a number is parsed into its significant digits and a power of ten,
//! and converted to `i64`, `i128` (Decimal128) or `i256` (Decimal256) only when
//! that is exact.

use std::fmt;

use datafusion::arrow::datatypes::i256;

/// Largest precision of a Decimal128 column.
pub(crate) const DECIMAL128_MAX_PRECISION: u8 = 38;
/// Largest precision of a Decimal256 column.
pub(crate) const DECIMAL256_MAX_PRECISION: u8 = 76;

/// A parsed DynamoDB number: `sign * digits * 10^exponent`, with `digits`
/// free of leading and trailing zeros (zero is the empty digit string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExactNumber {
    negative: bool,
    /// Significant digits, ASCII `0`-`9`, no leading or trailing zeros.
    digits: Vec<u8>,
    /// Power of ten applied to `digits` read as an integer.
    exponent: i32,
}

/// Why a string is not a DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid number")]
pub(crate) struct NotANumber(pub String);

impl ExactNumber {
    /// Parses the text DynamoDB sends for an `N` value (`-12.5`, `1E+3`, `0.001`).
    pub(crate) fn parse(text: &str) -> Result<Self, NotANumber> {
        let err = || NotANumber(text.to_string());
        let s = text.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp_part) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let mut exponent: i64 = match exp_part {
            Some(e) => {
                let e = e.strip_prefix('+').unwrap_or(e);
                if e.is_empty() || e.len() > 6 {
                    return Err(err());
                }
                e.parse::<i64>().map_err(|_| err())?
            }
            None => 0,
        };
        exponent -= frac_part.len() as i64;
        let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
        let leading = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..leading);
        while digits.last() == Some(&b'0') {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Ok(Self {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        let exponent = i32::try_from(exponent).map_err(|_| err())?;
        Ok(Self {
            negative,
            digits,
            exponent,
        })
    }

    /// True when the value is a whole number.
    pub(crate) fn is_integral(&self) -> bool {
        self.exponent >= 0
    }

    /// Digits after the decimal point needed to write the value exactly.
    pub(crate) fn scale(&self) -> u32 {
        if self.exponent < 0 {
            self.exponent.unsigned_abs()
        } else {
            0
        }
    }

    /// Digits before the decimal point (0 for values below one).
    pub(crate) fn integer_digits(&self) -> u32 {
        let total = self.digits.len() as i64 + self.exponent as i64;
        total.max(0) as u32
    }

    /// The value as an `i64`, when it is integral and in range.
    pub(crate) fn to_i64(&self) -> Option<i64> {
        if !self.is_integral() {
            return None;
        }
        let v = self.to_scaled_i128(0)?;
        i64::try_from(v).ok()
    }

    /// The value times `10^scale` as an `i128`, when that is an exact integer
    /// that fits in `precision` digits.
    pub(crate) fn to_decimal128(&self, precision: u8, scale: i8) -> Option<i128> {
        let v = self.to_scaled_i128(scale)?;
        let limit = 10i128.checked_pow(u32::from(precision))?;
        (v.unsigned_abs() < limit.unsigned_abs()).then_some(v)
    }

    /// The value times `10^scale` as an `i256`, when exact and within `precision` digits.
    pub(crate) fn to_decimal256(&self, precision: u8, scale: i8) -> Option<i256> {
        let shift = i64::from(self.exponent) + i64::from(scale);
        if shift < 0 {
            return None;
        }
        let total_digits = self.digits.len() as i64 + shift;
        if total_digits > i64::from(precision) {
            return None;
        }
        let ten = i256::from_i128(10);
        let mut v = i256::ZERO;
        for d in &self.digits {
            v = v
                .checked_mul(ten)?
                .checked_add(i256::from_i128(i128::from(d - b'0')))?;
        }
        for _ in 0..shift {
            v = v.checked_mul(ten)?;
        }
        Some(if self.negative { v.checked_neg()? } else { v })
    }

    /// The value as the nearest `f64` (only for columns the user typed as floats).
    pub(crate) fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// True when DynamoDB can store the value: at most 38 significant digits,
    /// magnitude between 1E-130 and 9.99…E+125 (or zero).
    pub(crate) fn fits_dynamodb(&self) -> bool {
        if self.digits.is_empty() {
            return true;
        }
        let msd_exponent = self.digits.len() as i64 + i64::from(self.exponent) - 1;
        self.digits.len() <= 38 && (-130..=125).contains(&msd_exponent)
    }

    fn to_scaled_i128(&self, scale: i8) -> Option<i128> {
        let shift = i64::from(self.exponent) + i64::from(scale);
        if shift < 0 {
            return None;
        }
        let mut v: i128 = 0;
        for d in &self.digits {
            v = v.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        for _ in 0..shift {
            v = v.checked_mul(10)?;
        }
        Some(if self.negative { -v } else { v })
    }
}

impl Ord for ExactNumber {
    /// Numeric order.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let sign = |n: &Self| match (n.digits.is_empty(), n.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (a, b) = (sign(self), sign(other));
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        // Same sign, both non-zero: compare magnitudes, then flip for negatives.
        let magnitude = |n: &Self| n.digits.len() as i64 + i64::from(n.exponent);
        let by_magnitude = magnitude(self)
            .cmp(&magnitude(other))
            .then_with(|| self.digits.cmp(&other.digits));
        if a < 0 {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }
}

impl PartialOrd for ExactNumber {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ExactNumber {
    /// Plain decimal notation without exponent, the shortest exact form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits = std::str::from_utf8(&self.digits).map_err(|_| fmt::Error)?;
        if self.exponent >= 0 {
            f.write_str(digits)?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let frac = self.exponent.unsigned_abs() as usize;
        if frac >= digits.len() {
            f.write_str("0.")?;
            for _ in 0..frac - digits.len() {
                f.write_str("0")?;
            }
            f.write_str(digits)
        } else {
            let split = digits.len() - frac;
            write!(f, "{}.{}", &digits[..split], &digits[split..])
        }
    }
}

/// `10^k` for `k` in `0..=38`, the powers a Decimal128 can hold.
const POW10_I128: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut k = 1;
    while k < 39 {
        table[k] = table[k - 1] * 10;
        k += 1;
    }
    table
};

/// Splits a leading minus sign off.
fn sign(text: &[u8]) -> (bool, &[u8]) {
    match text {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    }
}

/// `text` as an `i64` without allocating, for the common plain-integer form
/// (at most 18 digits, so it cannot overflow); one pass over the bytes.
/// `None` means "use [`ExactNumber`]", never "not a number".
pub(crate) fn fast_i64(text: &str) -> Option<i64> {
    let (negative, digits) = sign(text.as_bytes());
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(if negative { -v } else { v })
}

/// `text * 10^scale` as an `i128` within `precision` digits, without
/// allocating, for plain decimals (`-12.50`); `None` means "use [`ExactNumber`]".
///
/// Digits are gathered 18 at a time in a `u64` and folded into the `i128`
/// once per chunk (128-bit multiplies per digit cost several times more).
pub(crate) fn fast_decimal128(text: &str, precision: u8, scale: i8) -> Option<i128> {
    if scale < 0 || precision as usize >= POW10_I128.len() {
        return None;
    }
    let (negative, body) = sign(text.as_bytes());
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    if int.is_empty() || int.len() + frac.len() > 38 || frac.len() > scale as usize {
        return None;
    }
    let mut v: i128 = 0;
    let mut chunk: u64 = 0;
    let mut chunk_len = 0;
    for part in [int, frac] {
        for &b in part {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            chunk = chunk * 10 + u64::from(d);
            chunk_len += 1;
            if chunk_len == 18 {
                v = v * POW10_I128[18] + i128::from(chunk);
                (chunk, chunk_len) = (0, 0);
            }
        }
    }
    // At most 38 digits in all, so this cannot overflow.
    v = v * POW10_I128[chunk_len] + i128::from(chunk);
    let shift = POW10_I128[scale as usize - frac.len()];
    v = if int.len() + scale as usize <= 38 {
        // v < 10^(int + frac), so v * 10^(scale - frac) < 10^(int + scale).
        v * shift
    } else {
        v.checked_mul(shift)?
    };
    if v >= POW10_I128[usize::from(precision)] {
        return None;
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> ExactNumber {
        ExactNumber::parse(s).expect("valid number")
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(n("0").to_string(), "0");
        assert_eq!(n("-0.000").to_string(), "0");
        assert_eq!(n("12.500").to_string(), "12.5");
        assert_eq!(n("1E+3").to_string(), "1000");
        assert_eq!(n("1.5e-3").to_string(), "0.0015");
        assert_eq!(n("-007").to_string(), "-7");
        assert_eq!(n(".5").to_string(), "0.5");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "-", "abc", "1e", "1..2", "1e5e5", "0x10", "1,5", "NaN", "inf",
        ] {
            assert!(ExactNumber::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn scale_and_integer_digits() {
        let x = n("123.4500");
        assert_eq!((x.integer_digits(), x.scale()), (3, 2));
        let tiny = n("1E-130");
        assert_eq!((tiny.integer_digits(), tiny.scale()), (0, 130));
        assert!(n("1E+2").is_integral());
        assert!(!n("0.1").is_integral());
    }

    #[test]
    fn i64_only_when_exact_and_in_range() {
        assert_eq!(n("9223372036854775807").to_i64(), Some(i64::MAX));
        assert_eq!(n("-9223372036854775808").to_i64(), Some(i64::MIN));
        assert_eq!(n("9223372036854775808").to_i64(), None);
        assert_eq!(n("1.5").to_i64(), None);
    }

    #[test]
    fn thirty_eight_digits_round_trip_through_decimal128() {
        let s = "1234567890123456789012345678.9012345678";
        let x = n(s);
        let v = x.to_decimal128(38, 10).expect("fits");
        assert_eq!(v.to_string(), "12345678901234567890123456789012345678");
        // Not exact at a smaller scale, and too wide at a larger one.
        assert_eq!(x.to_decimal128(38, 9), None);
        assert_eq!(x.to_decimal128(38, 11), None);
    }

    #[test]
    fn decimal256_holds_what_decimal128_cannot() {
        let x = n("1E+60");
        assert_eq!(x.to_decimal128(38, 0), None);
        let v = x.to_decimal256(76, 2).expect("fits");
        assert_eq!(v.to_string(), format!("1{}", "0".repeat(62)));
        assert_eq!(n("-1E-2").to_decimal256(76, 2), Some(i256::from_i128(-1)));
    }

    #[test]
    fn numeric_order() {
        let mut v: Vec<ExactNumber> = [
            "10", "-1E+2", "9.5", "0", "-0.001", "1E-130", "123", "12", "-99",
        ]
        .iter()
        .map(|s| n(s))
        .collect();
        v.sort();
        let sorted: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            sorted,
            [
                "-100",
                "-99",
                "-0.001",
                "0",
                &format!("0.{}1", "0".repeat(129)),
                "9.5",
                "10",
                "12",
                "123"
            ]
        );
    }

    #[test]
    fn dynamodb_range() {
        assert!(
            n("1E-130").fits_dynamodb() && n("9.9E+125").fits_dynamodb() && n("0").fits_dynamodb()
        );
        assert!(!n("1E-131").fits_dynamodb() && !n("1E+126").fits_dynamodb());
        assert!(!n(&"1".repeat(39)).fits_dynamodb());
    }

    #[test]
    fn fast_paths_agree_with_the_exact_parser() {
        for text in [
            "0",
            "-7",
            "123456789012345678",
            "12.5",
            "-0.05",
            "99.99",
            "1E+3",
            "1.234",
            "00012",
            "-",
            ".5",
            "1234567890123456789012345678901234567",
            "12345678901234567890123456789012345.6",
            "-123456789012345678.5",
            "1234567890123456789",
            "12a",
            "1.2.3",
            "-1.",
        ] {
            let exact = ExactNumber::parse(text).ok();
            if let Some(v) = fast_i64(text) {
                assert_eq!(Some(v), exact.as_ref().and_then(|e| e.to_i64()), "{text}");
            }
            if let Some(v) = fast_decimal128(text, 38, 2) {
                assert_eq!(
                    Some(v),
                    exact.as_ref().and_then(|e| e.to_decimal128(38, 2)),
                    "{text}"
                );
            }
        }
        assert_eq!(fast_decimal128("12.5", 38, 2), Some(1250));
        assert_eq!(
            fast_decimal128("1.234", 38, 2),
            None,
            "not exact at scale 2: slow path decides"
        );
        assert_eq!(fast_decimal128("100", 3, 1), None, "1000 needs 4 digits");
        assert_eq!(fast_i64("1E+3"), None);
    }

    #[test]
    fn float_conversion_is_nearest() {
        assert_eq!(n("0.25").to_f64(), 0.25);
        assert_eq!(n("-1E+3").to_f64(), -1000.0);
    }
}
