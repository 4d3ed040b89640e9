//! Exit codes, as Jepsen uses them: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input,
//! 255 the run itself crashed.

pub const INVALID: u8 = 1;
pub const UNKNOWN: u8 = 2;
pub const BAD_ARGS: u8 = 254;
pub const CRASHED: u8 = 255;

/// An error that ends a command with a specific exit code and a one-line message.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    /// Bad arguments or unusable input: the message says what to do.
    pub fn bad_args(message: impl Into<String>) -> Exit {
        Exit {
            code: BAD_ARGS,
            message: message.into(),
        }
    }

    /// The run could not be carried out.
    pub fn crashed(message: impl Into<String>) -> Exit {
        Exit {
            code: CRASHED,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

impl From<anyhow::Error> for Exit {
    fn from(err: anyhow::Error) -> Exit {
        match err.downcast::<Exit>() {
            Ok(exit) => exit,
            Err(err) => Exit::crashed(format!("{err:#}")),
        }
    }
}

impl From<riptide_store::Error> for Exit {
    /// A results dir that cannot be used is bad input; any other store error is a crash.
    fn from(err: riptide_store::Error) -> Exit {
        match err {
            riptide_store::Error::Layout(message) => Exit::bad_args(message),
            other => Exit::crashed(other.to_string()),
        }
    }
}
