//! Importing exports: ZIPs, unpacked folders and JSON files → raw conversations →
//! [`crate::archive::Archive::upsert`].

pub mod guard;
pub mod layout;
pub mod stream;
