//! How domain ids travel to and from MySQL: as `BIGINT UNSIGNED`, so that
//! statements take them as parameters and rows give them back typed (a 0
//! or a negative number in an id column is a malformed row).

use mysql_async::prelude::FromValue;
use mysql_async::{FromValueError, Value};

use crate::domain::{BranchId, ProductId, RefundId, SaleId, TenantId};

/// An id on its way out of a row.
pub struct IdIr<T>(T);

macro_rules! id_value {
    ($id:ident) => {
        impl From<$id> for Value {
            fn from(id: $id) -> Value {
                Value::UInt(id.get())
            }
        }

        impl TryFrom<Value> for IdIr<$id> {
            type Error = FromValueError;

            fn try_from(v: Value) -> Result<Self, FromValueError> {
                let n: u64 = mysql_async::from_value_opt(v)?;
                $id::new(n).map(IdIr).ok_or(FromValueError(Value::UInt(n)))
            }
        }

        impl From<IdIr<$id>> for $id {
            fn from(ir: IdIr<$id>) -> $id {
                ir.0
            }
        }

        impl From<IdIr<$id>> for Value {
            fn from(ir: IdIr<$id>) -> Value {
                ir.0.into()
            }
        }

        impl FromValue for $id {
            type Intermediate = IdIr<$id>;
        }
    };
}

id_value!(TenantId);
id_value!(BranchId);
id_value!(ProductId);
id_value!(SaleId);
id_value!(RefundId);
