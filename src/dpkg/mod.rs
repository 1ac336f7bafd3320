//! What dpkg does, without running anything from a package:
//! - `deb` reads a .deb (ar, control, data tar);
//! - `unpack` turns it once into a pack and an index in the cache;
//! - `shell` reads POSIX sh as maintainer scripts use it, knowing nothing
//!   of dpkg, and `scripts` says what each command they run means for an
//!   image (accounts, alternatives, generated files, what is not needed);
//! - `version` orders Debian versions as dpkg does;
//! - `install` lays the packages into one tree as dpkg would, configures
//!   them from what their scripts and declarations say, writes what their
//!   triggers would have left, and reports every effect.

pub mod deb;
pub mod install;
mod scripts;
mod shell;
pub mod unpack;
pub mod version;
mod wildcard;
