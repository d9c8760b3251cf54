//! Status codes exactly as the API reference numbers them.

use serde::{Deserialize, Serialize};

macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "i32", try_from = "i32")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> i32 {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 { v.code() }
        }

        impl TryFrom<i32> for $name {
            type Error = String;
            fn try_from(code: i32) -> Result<Self, String> {
                Self::from_code(code).ok_or_else(|| format!("unknown {} code {code}", stringify!($name)))
            }
        }
    };
}

coded_enum! {
    /// Phone status (reference 5.3.1).
    PhoneStatus {
        Creating = 1,
        Running = 2,
        Resetting = 3,
        Restarting = 4,
        Frozen = 6,
        Stopping = 7,
        Stopped = 8,
        ResetFailed = -5,
        RestartFailed = -6,
        Abnormal = -7,
        CreateFailed = -8,
        StopFailed = -9,
    }
}

impl PhoneStatus {
    /// A status that only exists while an operation is in flight.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Self::Creating | Self::Resetting | Self::Restarting | Self::Stopping
        )
    }
}

coded_enum! {
    /// Server status (reference 5.1.1). 0, 1, 3 and 4 all mean "creating"; we write 1.
    ServerStatus {
        Creating = 1,
        Abnormal = 2,
        Running = 5,
        Frozen = 8,
        Off = 10,
        Stopping = 11,
        StopFailed = 12,
        Starting = 13,
    }
}

impl ServerStatus {
    pub fn is_transitional(self) -> bool {
        matches!(self, Self::Creating | Self::Stopping | Self::Starting)
    }
}

coded_enum! {
    /// Job status (reference 5.4.1).
    JobStatus {
        Running = 1,
        Succeeded = 2,
        Failed = -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in PhoneStatus::ALL {
            assert_eq!(PhoneStatus::from_code(s.code()), Some(*s));
        }
        assert_eq!(PhoneStatus::from_code(5), None);
        assert_eq!(ServerStatus::Running.code(), 5);
        assert_eq!(JobStatus::Failed.code(), -1);
        assert_eq!(serde_json::to_string(&PhoneStatus::Stopped).unwrap(), "8");
    }
}
