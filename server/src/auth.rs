//! Who is asking: JWT tokens (jsonwebtoken, HS256), argon2 password hashes and
//! one-time join codes. Every token names one role and one clinic; a
//! participant's token also names exactly one session and one seat.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use blake2::{Blake2b, Digest, digest::consts::U32};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::{Actor, ClinicId, Role, SeatId, SessionId, StaffId, StaffRole, Timestamp, Viewer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An authenticated caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Principal {
    /// A staff member of `clinic`.
    Staff {
        /// Account.
        id: StaffId,
        /// Role.
        role: StaffRole,
        /// Clinic.
        clinic: ClinicId,
    },
    /// A participant, bound to one seat of one session.
    Participant {
        /// Clinic.
        clinic: ClinicId,
        /// The only session the token opens.
        session: SessionId,
        /// The only seat it acts for.
        seat: SeatId,
    },
}

impl Principal {
    /// The actor recorded on events this caller causes.
    pub fn actor(&self) -> Actor {
        match *self {
            Principal::Staff { id, role, .. } => Actor::Staff { staff: id, role },
            Principal::Participant { seat, .. } => Actor::Participant { seat },
        }
    }

    /// What this caller may see.
    pub fn viewer(&self) -> Viewer {
        self.actor().viewer()
    }

    /// Role.
    pub fn role(&self) -> Role {
        match self {
            Principal::Staff { role, .. } => (*role).into(),
            Principal::Participant { .. } => Role::Participant,
        }
    }

    /// Clinic.
    pub fn clinic(&self) -> ClinicId {
        match self {
            Principal::Staff { clinic, .. } | Principal::Participant { clinic, .. } => *clinic,
        }
    }

    /// Whether this caller may open `session` of `clinic`: staff any session of
    /// their clinic, a participant only their own.
    pub fn may_open(&self, session: SessionId, clinic: ClinicId) -> bool {
        match self {
            Principal::Staff { clinic: own, .. } => *own == clinic,
            Principal::Participant {
                clinic: own,
                session: s,
                ..
            } => *own == clinic && *s == session,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: Role,
    clinic: ClinicId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seat: Option<SeatId>,
    iat: i64,
    /// Seconds since the epoch, as JWT requires.
    exp: i64,
}

/// Why a token was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TokenError {
    /// Past its expiry.
    #[error("the token expired; log in or join again")]
    Expired,
    /// Malformed, badly signed, or claims that do not fit together.
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// A verified token.
#[derive(Clone, Copy, Debug)]
pub struct Verified {
    /// Who.
    pub principal: Principal,
    /// Until when.
    pub expires_at: Timestamp,
}

/// Signing and verification keys (HS256 with a server secret).
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Keys {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the server's clock in `verify`, one place
        // for time, so tests with a controlled clock see the same rule.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Issues a token for `principal` valid for `ttl_ms` from `now`.
    pub fn issue(&self, principal: &Principal, now: Timestamp, ttl_ms: i64) -> (String, Timestamp) {
        let exp_s = now.plus_ms(ttl_ms).0 / 1000;
        let (sub, session, seat) = match *principal {
            Principal::Staff { id, .. } => (id.as_uuid(), None, None),
            Principal::Participant { session, seat, .. } => {
                (seat.as_uuid(), Some(session), Some(seat))
            }
        };
        let claims = Claims {
            sub,
            role: principal.role(),
            clinic: principal.clinic(),
            session,
            seat,
            iat: now.0 / 1000,
            exp: exp_s,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, Timestamp(exp_s * 1000))
    }

    /// Verifies signature, shape and expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Verified, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                TokenError::Invalid(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        "its signature does not match".into()
                    }
                    _ => e.to_string(),
                })
            })?;
        let c = data.claims;
        let expires_at = Timestamp(c.exp.saturating_mul(1000));
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        let principal = match (c.role, c.session, c.seat) {
            (Role::Participant, Some(session), Some(seat)) if seat.as_uuid() == c.sub => {
                Principal::Participant {
                    clinic: c.clinic,
                    session,
                    seat,
                }
            }
            (Role::Participant, _, _) => {
                return Err(TokenError::Invalid(
                    "a participant token must name one session and its seat".into(),
                ));
            }
            (role, None, None) => Principal::Staff {
                id: StaffId::from_uuid(c.sub),
                role: match role {
                    Role::Admin => StaffRole::Admin,
                    Role::Facilitator => StaffRole::Facilitator,
                    Role::Medical => StaffRole::Medical,
                    Role::Participant => unreachable!("matched above"),
                },
                clinic: c.clinic,
            },
            _ => {
                return Err(TokenError::Invalid(
                    "a staff token must not name a seat".into(),
                ));
            }
        };
        Ok(Verified {
            principal,
            expires_at,
        })
    }
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(Uuid::new_v4().as_bytes()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Letters and digits that cannot be mistaken for each other (no 0/O, 1/I).
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A fresh one-time join code, `XXXX-XXXX` (40 random bits).
pub fn new_join_code() -> String {
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u64 = 0;
    for b in &bytes[..5] {
        bits = (bits << 8) | u64::from(*b);
    }
    let chars: Vec<u8> = (0..8)
        .map(|i| CODE_ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize])
        .collect();
    format!(
        "{}-{}",
        std::str::from_utf8(&chars[..4]).expect("ascii"),
        std::str::from_utf8(&chars[4..]).expect("ascii")
    )
}

/// The stored form of a join code: a hash of its normalised text (case,
/// spaces and dashes removed), so the database never holds a usable code.
pub fn join_code_hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Blake2b::<U32>::digest(normal.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let p = Principal::Participant {
            clinic: ClinicId::from_uuid(Uuid::from_u128(1)),
            session: SessionId::from_uuid(Uuid::from_u128(2)),
            seat: SeatId::from_uuid(Uuid::from_u128(3)),
        };
        let now = Timestamp(1_790_000_000_000);
        let (token, exp) = keys().issue(&p, now, 60_000);
        assert_eq!(exp, now.plus_ms(60_000));
        assert_eq!(keys().verify(&token, now).unwrap().principal, p);
        assert_eq!(keys().verify(&token, exp).unwrap_err(), TokenError::Expired);
        let other = Keys::new(b"another secret, also 32 bytes...");
        assert!(matches!(
            other.verify(&token, now),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn join_codes_are_readable_and_normalised() {
        let code = new_join_code();
        assert_eq!(code.len(), 9);
        assert!(
            code.chars()
                .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8)))
        );
        let sloppy = format!(" {} ", code.to_lowercase().replace('-', " "));
        assert_eq!(join_code_hash(&code), join_code_hash(&sloppy));
        assert_ne!(join_code_hash(&code), join_code_hash(&new_join_code()));
    }

    #[test]
    fn passwords_verify() {
        let phc = hash_password("correct horse");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
    }
}
