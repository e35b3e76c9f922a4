//! A serde adapter for encoding that refuses what bincode would get wrong
//! without a word: a struct field skipped when encoding.
//!
//! bincode writes no field names, so a decoder reads a struct's fields by
//! position. A field that `#[serde(skip_serializing_if = "…")]` leaves
//! out shifts every field after it: the receiver reads the next field's
//! bytes in its place, and fails with some unrelated error or, worse,
//! decodes a wrong value. serde tells the serializer about such a field of
//! a struct or struct variant (`SerializeStruct::skip_field`), and bincode
//! ignores it. [`Strict`] wraps the serializer, at every level of nesting,
//! and fails there instead, naming the field and its struct, on the
//! sender, before anything is written.
//!
//! Not caught, because serde says nothing of them: a field always skipped
//! (`#[serde(skip_serializing)]`), one skipped in a tuple struct or tuple
//! variant, a field or variant skipped only when decoding. The `IpcType`
//! docs list them.
//!
//! Everything else is forwarded unchanged (and inlined: the wrappers are
//! zero-sized besides what they wrap).

use core::fmt::Display;

use serde::ser::{
    Error, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// `value`, serialised through the strict adapter.
pub(crate) struct Strict<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Serialize + ?Sized> Serialize for Strict<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Ser(serializer))
    }
}

/// The error for field `key` of struct `name`, skipped when encoding.
fn skipped<E: Error>(name: &str, key: &str) -> E {
    E::custom(format_args!(
        "field `{key}` of `{name}` was skipped when encoding (`#[serde(skip_serializing_if)]`), \
         which the IPC wire format (bincode) cannot carry: it writes no field names, so the \
         receiver would read the next field in its place; encode every field (an `Option` takes \
         one byte when `None`), or skip it on both sides with `#[serde(skip)]`"
    ))
}

/// A serializer (or one of its compound states) wrapped so that what it
/// is handed is wrapped too.
struct Ser<S>(S);

/// A struct's state, with the struct's name for the error.
struct Struct<S> {
    inner: S,
    name: &'static str,
}

/// Forwards `serialize_*` methods that take a plain value.
macro_rules! forward {
    ($($name:ident($ty:ty);)*) => {$(
        #[inline]
        fn $name(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$name(v)
        }
    )*};
}

impl<S: Serializer> Serializer for Ser<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Ser<S::SerializeSeq>;
    type SerializeTuple = Ser<S::SerializeTuple>;
    type SerializeTupleStruct = Ser<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Ser<S::SerializeTupleVariant>;
    type SerializeMap = Ser<S::SerializeMap>;
    type SerializeStruct = Struct<S::SerializeStruct>;
    type SerializeStructVariant = Struct<S::SerializeStructVariant>;

    forward! {
        serialize_bool(bool); serialize_char(char); serialize_str(&str); serialize_bytes(&[u8]);
        serialize_i8(i8); serialize_i16(i16); serialize_i32(i32); serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8); serialize_u16(u16); serialize_u32(u32); serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32); serialize_f64(f64);
        serialize_unit_struct(&'static str);
    }

    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Strict(value))
    }

    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Strict(value))
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Strict(value))
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Ser)
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Ser)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Ser)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Ser)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Ser)
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.0.serialize_struct(name, len)?;
        Ok(Struct { inner, name })
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let inner = self.0.serialize_struct_variant(name, index, variant, len)?;
        Ok(Struct { inner, name })
    }

    #[inline]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Implements a compound state whose items are values: each is wrapped.
macro_rules! compound {
    ($($trait:ident: $method:ident;)*) => {$(
        impl<S: $trait> $trait for Ser<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                self.0.$method(&Strict(value))
            }

            #[inline]
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

compound! {
    SerializeSeq: serialize_element;
    SerializeTuple: serialize_element;
    SerializeTupleStruct: serialize_field;
    SerializeTupleVariant: serialize_field;
}

impl<S: SerializeMap> SerializeMap for Ser<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Strict(key))
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Strict(value))
    }

    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(&Strict(key), &Strict(value))
    }

    #[inline]
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

/// Implements a struct's state: fields are wrapped, and a skipped one
/// fails.
macro_rules! structure {
    ($($trait:ident;)*) => {$(
        impl<S: $trait> $trait for Struct<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), S::Error> {
                self.inner.serialize_field(key, &Strict(value))
            }

            fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                Err(skipped(self.name, key))
            }

            #[inline]
            fn end(self) -> Result<S::Ok, S::Error> {
                self.inner.end()
            }
        }
    )*};
}

structure! {
    SerializeStruct;
    SerializeStructVariant;
}
