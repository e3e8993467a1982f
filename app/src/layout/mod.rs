//! The frame around signed-in pages: top bar, navigation, team switcher,
//! and the not-found page.

pub mod pages;
