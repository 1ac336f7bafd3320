//! What dpkg and maintainer scripts would do, without running anything:
//! `deb` reads a .deb (ar, control, data tar), `unpack` turns it once
//! into a pack and an index, and `install` lays the packages into one tree
//! with what their scripts, triggers and declarations would have left.

pub mod deb;
pub mod install;
mod scripts;
mod shell;
pub mod unpack;
