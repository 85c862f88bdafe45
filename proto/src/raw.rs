//! Raw TLV capture on top of the `der` reader: values kept as the bytes they were received as.
//! Used where re-encoding through a typed model could change bytes (certificates, whose
//! signatures cover their exact encoding) or order (a `SetOfVec` sorts on decode).

use der::{
    Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer,
};

/// One complete TLV kept as the bytes it was received as. Decoding through it instead of the
/// `cms` certificate types keeps each certificate's exact encoding (a re-encoded certificate
/// whose DER was not canonical would no longer verify) and the order of the SET OF, which the
/// `der` crate sorts when it decodes a `SetOfVec`.
#[derive(Clone, Copy)]
pub(crate) struct RawTlv<'a>(pub(crate) &'a [u8]);

impl<'a> Decode<'a> for RawTlv<'a> {
    type Error = der::Error;

    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        Ok(RawTlv(tlv_bytes(reader)?))
    }
}

/// [`Reader::tlv_bytes`] for BER too: der 0.8.3 sizes the header of an indefinite-length TLV as
/// if its length were definite (`Length::encoded_len` ignores the indefinite flag), so the slice
/// it returns is off by the size of a long-form length.
pub(crate) fn tlv_bytes<'a, R: Reader<'a>>(reader: &mut R) -> der::Result<&'a [u8]> {
    let header = Header::peek(reader)?;
    let mut after_tag = reader.clone();
    Tag::decode(&mut after_tag)?;
    let header_len = if after_tag.peek_byte() == Some(0x80) {
        // The tag, then the single 0x80 octet (X.690 8.1.3.6.1).
        (header.tag().encoded_len()? + Length::ONE)?
    } else {
        header.encoded_len()?
    };
    // An indefinite length already counts the end-of-contents octets.
    reader.read_slice((header_len + header.length())?)
}

impl Encode for RawTlv<'_> {
    fn encoded_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

/// A SET OF or SEQUENCE OF anything, each element kept as raw TLV bytes in encoding order.
macro_rules! raw_list {
    ($(#[$doc:meta])* $name:ident, $tag:expr) => {
        $(#[$doc])*
        pub(crate) struct $name<'a>(pub(crate) Vec<&'a [u8]>);

        impl FixedTag for $name<'_> {
            const TAG: Tag = $tag;
        }

        impl<'a> DecodeValue<'a> for $name<'a> {
            type Error = der::Error;

            fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
                // The reader is nested to the value (end-of-contents excluded for indefinite
                // lengths).
                let mut items = Vec::new();
                while !reader.is_finished() {
                    items.push(tlv_bytes(reader)?);
                }
                Ok($name(items))
            }
        }

        impl EncodeValue for $name<'_> {
            fn value_len(&self) -> der::Result<Length> {
                self.0
                    .iter()
                    .try_fold(Length::ZERO, |acc, i| acc + Length::try_from(i.len())?)
            }

            fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
                self.0.iter().try_for_each(|i| writer.write(i))
            }
        }
    };
}

raw_list!(
    /// A SET OF anything, each element kept as raw TLV bytes in encoding order.
    RawSet,
    Tag::Set
);
raw_list!(
    /// A SEQUENCE OF anything, each element kept as raw TLV bytes in encoding order.
    RawSeq,
    Tag::Sequence
);
