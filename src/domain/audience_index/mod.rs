//! The audience index's data: followers as dense numbers, tags as bitmaps, clicks and orders as
//! time-sorted arrays, and segment expressions evaluated over them. Pure: `store::audience_feed`
//! reads the rows that fill it and `app::audience::index` decides when.

pub mod state;
mod timeline;
