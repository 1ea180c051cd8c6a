//! The WeChat protocol: signatures, the safe-mode cipher, inbound pushes and passive replies.
//! It imports nothing else from this crate, so it could become a crate of its own.

pub mod api;
mod cdata;
pub mod crypto;
pub mod errcode_zh;
pub mod fields;
pub mod message;
pub mod mode;
pub mod reply;
pub mod signature;

#[cfg(test)]
mod test_data;
