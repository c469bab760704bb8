//! Tests of the grammar and its lowering, rule family by rule family.

use super::parse;
