//! The [`HistoryStore`] port on the table: one head item per stream, one item per kept
//! message, one mark per appended request (see the module docs of `dynamodb` for the items).
//!
//! An append reads the head (and the request's mark) consistently, then writes in one
//! `TransactWriteItems`: the head's `seq` `ADD`ed 1 on condition that it still holds the
//! value read (a fresh epoch's head is `Put` on condition that it is absent, or the expired
//! head read), the message at that number, the request's mark on condition that it is
//! absent (or expired), and the delete of the message that falls out of the kept window.
//! The head's condition makes concurrent appends take turns: one commits, the others read
//! again and take the next number, so the numbers have no gap and no repeat. The mark's
//! condition makes a redelivered request find its first position instead of appending again.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, TransactWriteItem, Update,
};
use wspush_domain::history::{parse_positions_json, positions_json};
use wspush_domain::{Epoch, ExternalId, Position, RequestId, Retention, Timestamp};
use wspush_ports::{Appended, HistoryRead, HistoryStore, Recorded, StoreError};

use super::DynamoDbStore;
use super::errors::{build_error, store_error};
use super::items::*;
use super::subscriptions::cancellation_reasons;
use crate::memory::new_epoch;

/// How many times an append reads the head again after losing the race for it.
const APPEND_ATTEMPTS: u32 = 40;

/// The head as an append read it.
struct Head {
    epoch: Epoch,
    seq: u64,
    live: bool,
}

impl DynamoDbStore {
    async fn consistent_get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?
            .item)
    }

    async fn head(&self, stream: &ExternalId, now: Timestamp) -> Result<Option<Head>, StoreError> {
        let Some(item) = self.consistent_get(stream_key(stream, HEAD_SK)).await? else {
            return Ok(None);
        };
        Ok(Some(Head {
            epoch: epoch_of(&item)?,
            seq: count(&item, SEQ)?,
            live: millis(&item, EXPIRES_AT_MS)? > now,
        }))
    }

    /// The position a request's live mark records.
    async fn marked(
        &self,
        stream: &ExternalId,
        request: &RequestId,
        now: Timestamp,
    ) -> Result<Option<Position>, StoreError> {
        let Some(item) = self.consistent_get(mark_key(stream, request)).await? else {
            return Ok(None);
        };
        if millis(&item, EXPIRES_AT_MS)? <= now {
            return Ok(None);
        }
        Ok(Some(Position {
            seq: count(&item, SEQ)?,
            epoch: epoch_of(&item)?,
        }))
    }

    /// The transaction that appends at `head.seq + 1` (or 1 in a new epoch).
    fn append_actions(
        &self,
        stream: &ExternalId,
        head: Option<&Head>,
        request: Option<&RequestId>,
        data: &str,
        retention: Retention,
        now: Timestamp,
    ) -> Result<(Position, Vec<TransactWriteItem>), StoreError> {
        let until = now.saturating_add(retention.ttl);
        let (epoch, seq) = match head {
            Some(head) if head.live => (head.epoch.clone(), head.seq + 1),
            _ => (new_epoch(), 1),
        };
        let lifetime = |item: &mut Item| {
            item.insert(EXPIRES_AT_MS.into(), number(until.unix_millis()));
            item.insert(TTL.into(), number(until.unix_millis().div_ceil(1000)));
        };
        let mut actions = Vec::with_capacity(4);
        actions.push(match head {
            Some(live) if live.live => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(stream_key(stream, HEAD_SK)))
                        .update_expression("SET #expires = :until, #ttl = :ttl ADD #seq :one")
                        .condition_expression("#seq = :seq AND #epoch = :epoch")
                        .expression_attribute_names("#expires", EXPIRES_AT_MS)
                        .expression_attribute_names("#ttl", TTL)
                        .expression_attribute_names("#seq", SEQ)
                        .expression_attribute_names("#epoch", EPOCH)
                        .expression_attribute_values(":until", number(until.unix_millis()))
                        .expression_attribute_values(
                            ":ttl",
                            number(until.unix_millis().div_ceil(1000)),
                        )
                        .expression_attribute_values(":one", number(1))
                        .expression_attribute_values(":seq", number(live.seq))
                        .expression_attribute_values(
                            ":epoch",
                            AttributeValue::S(live.epoch.to_string()),
                        )
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            _ => {
                let mut item = stream_key(stream, HEAD_SK);
                item.insert(EPOCH.into(), AttributeValue::S(epoch.to_string()));
                item.insert(SEQ.into(), number(seq));
                lifetime(&mut item);
                let put = Put::builder().table_name(&self.table).set_item(Some(item));
                let put = match head {
                    // The expired head read, and no other.
                    Some(expired) => put
                        .condition_expression("#seq = :seq AND #epoch = :epoch")
                        .expression_attribute_names("#seq", SEQ)
                        .expression_attribute_names("#epoch", EPOCH)
                        .expression_attribute_values(":seq", number(expired.seq))
                        .expression_attribute_values(
                            ":epoch",
                            AttributeValue::S(expired.epoch.to_string()),
                        ),
                    None => put
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", PK),
                };
                TransactWriteItem::builder()
                    .put(put.build().map_err(build_error)?)
                    .build()
            }
        });
        let position = Position { seq, epoch };
        let mut message = message_key(stream, &position);
        message.insert(DATA.into(), AttributeValue::S(data.to_owned()));
        lifetime(&mut message);
        actions.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(message))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        );
        if let Some(request) = request {
            let mut mark = mark_key(stream, request);
            mark.insert(EPOCH.into(), AttributeValue::S(position.epoch.to_string()));
            mark.insert(SEQ.into(), number(seq));
            // Remembered past its message (trimming and the TTL take that sooner), for as
            // long as the request may still be redelivered.
            let remembered = now.saturating_add(retention.marks.max(retention.ttl));
            mark.insert(EXPIRES_AT_MS.into(), number(remembered.unix_millis()));
            mark.insert(TTL.into(), number(remembered.unix_millis().div_ceil(1000)));
            actions.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(mark))
                            .condition_expression("attribute_not_exists(#pk) OR #expires <= :now")
                            .expression_attribute_names("#pk", PK)
                            .expression_attribute_names("#expires", EXPIRES_AT_MS)
                            .expression_attribute_values(":now", number(now.unix_millis()))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            );
        }
        let size = u64::from(retention.size);
        if seq > size {
            let dropped = Position {
                seq: seq - size,
                epoch: position.epoch.clone(),
            };
            actions.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(message_key(stream, &dropped)))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            );
        }
        Ok((position, actions))
    }
}

#[async_trait]
impl HistoryStore for DynamoDbStore {
    async fn append(
        &self,
        stream: &ExternalId,
        request: Option<&RequestId>,
        data: &str,
        retention: Retention,
        now: Timestamp,
    ) -> Result<Appended, StoreError> {
        for attempt in 0..APPEND_ATTEMPTS {
            // The request's mark and the head, read at once.
            let mark = async {
                match request {
                    Some(request) => self.marked(stream, request, now).await,
                    None => Ok(None),
                }
            };
            let (mark, head) = tokio::try_join!(mark, self.head(stream, now))?;
            if let Some(position) = mark {
                return Ok(Appended {
                    position,
                    new: false,
                });
            }
            let (position, actions) =
                self.append_actions(stream, head.as_ref(), request, data, retention, now)?;
            let error = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(Appended {
                        position,
                        new: true,
                    });
                }
                Err(error) => error,
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(store_error(error));
            };
            let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
            let lost_race = reasons.iter().any(|reason| {
                ["ConditionalCheckFailed", "TransactionConflict"].contains(&code(reason).as_str())
            });
            if !lost_race {
                return Err(store_error(error));
            }
            // Another append took the number (or marked the request): read again, after a
            // short random pause that grows with each lost race.
            let ceiling = 2 + u64::from(attempt.min(10)) * 3;
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..ceiling))).await;
        }
        Err(StoreError::Unavailable(
            format!(
                "appending to stream {stream} lost the race for its head {APPEND_ATTEMPTS} times"
            )
            .into(),
        ))
    }

    async fn record_positions(
        &self,
        stream: &ExternalId,
        position: &Position,
        positions: &[(ExternalId, Position)],
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(message_key(stream, position)))
            .update_expression("SET #positions = :positions")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#positions", POSITIONS)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":positions", AttributeValue::S(positions_json(positions)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Trimmed already: nothing to record on.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(store_error(error)),
        }
    }

    async fn read_after(
        &self,
        stream: &ExternalId,
        after: &Position,
        retention: Retention,
        now: Timestamp,
    ) -> Result<HistoryRead, StoreError> {
        let Some(head) = self.head(stream, now).await?.filter(|head| head.live) else {
            return Ok(HistoryRead::Gap);
        };
        if head.epoch != after.epoch || after.seq > head.seq {
            return Ok(HistoryRead::Gap);
        }
        if after.seq == head.seq {
            return Ok(HistoryRead::Messages(Vec::new()));
        }
        let oldest_kept = head.seq.saturating_sub(u64::from(retention.size)) + 1;
        if after.seq + 1 < oldest_kept {
            return Ok(HistoryRead::Gap);
        }
        let first = message_key(
            stream,
            &Position {
                seq: after.seq + 1,
                epoch: head.epoch.clone(),
            },
        );
        let last = message_key(
            stream,
            &Position {
                seq: head.seq,
                epoch: head.epoch.clone(),
            },
        );
        let mut messages = Vec::new();
        let mut next = after.seq + 1;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", first[PK].clone())
                .expression_attribute_values(":first", first[SK].clone())
                .expression_attribute_values(":last", last[SK].clone())
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in output.items() {
                let seq = seq_of_message(item)?;
                if seq != next || millis(item, EXPIRES_AT_MS)? <= now {
                    return Ok(HistoryRead::Gap);
                }
                let positions = match item.get(POSITIONS) {
                    Some(value) => value
                        .as_s()
                        .ok()
                        .and_then(|text| parse_positions_json(text))
                        .ok_or_else(|| corrupt(item, format!("`{POSITIONS}` is not positions")))?,
                    None => Vec::new(),
                };
                messages.push(Recorded {
                    position: Position {
                        seq,
                        epoch: head.epoch.clone(),
                    },
                    data: string(item, DATA)?.to_owned(),
                    positions,
                });
                next += 1;
            }
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        if next != head.seq + 1 {
            return Ok(HistoryRead::Gap);
        }
        Ok(HistoryRead::Messages(messages))
    }
}

fn epoch_of(item: &Item) -> Result<Epoch, StoreError> {
    Epoch::parse(string(item, EPOCH)?).ok_or_else(|| corrupt(item, "`epoch` is not an epoch"))
}

fn count(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| corrupt(item, format!("no numeric attribute `{name}`")))
}

fn seq_of_message(item: &Item) -> Result<u64, StoreError> {
    string(item, SK)?
        .rsplit('#')
        .next()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| corrupt(item, "`sk` is not a message key"))
}
