//! The shares a broadcast is read in: segments of the store, as in a DynamoDB parallel scan.

/// The largest number of parallel scan segments DynamoDB accepts.
pub const MAX_SEGMENTS: u32 = 1_000_000;

/// One share of a broadcast: segment `index` of `total`, as in a DynamoDB parallel scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    index: u32,
    total: u32,
}

/// Why a segment is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// `total` was 0 or above [`MAX_SEGMENTS`].
    #[error("segment total must be between 1 and {MAX_SEGMENTS}, got {0}")]
    Total(u32),
    /// `index` was not below `total`.
    #[error("segment index must be below the total {total}, got {index}")]
    Index {
        /// The index given.
        index: u32,
        /// The total given.
        total: u32,
    },
}

impl Segment {
    /// The whole table as one segment.
    pub const WHOLE: Segment = Segment { index: 0, total: 1 };

    /// Segment `index` of `total`.
    pub fn new(index: u32, total: u32) -> Result<Self, SegmentError> {
        if total == 0 || total > MAX_SEGMENTS {
            return Err(SegmentError::Total(total));
        }
        if index >= total {
            return Err(SegmentError::Index { index, total });
        }
        Ok(Self { index, total })
    }

    /// All `total` segments of a table.
    pub fn all(total: u32) -> Result<Vec<Segment>, SegmentError> {
        Segment::new(0, total)?;
        Ok((0..total).map(|index| Segment { index, total }).collect())
    }

    /// This segment's number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many segments the table is split into.
    pub fn total(self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_must_have_an_index_below_a_positive_total() {
        assert_eq!(Segment::new(0, 0), Err(SegmentError::Total(0)));
        assert_eq!(
            Segment::new(2, 2),
            Err(SegmentError::Index { index: 2, total: 2 })
        );
        assert!(Segment::new(MAX_SEGMENTS - 1, MAX_SEGMENTS).is_ok());
        assert!(Segment::new(0, MAX_SEGMENTS + 1).is_err());
    }
}
