//! Integration tests of the virtual phone.

mod android;
mod apk;
mod commands;
mod forward;
mod fs;
mod pm;
mod shell;
mod support;
