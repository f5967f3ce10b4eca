//! Uploads of ISO and disk images into new volumes: streamed, in chunks, resumable.
//!
//! An image can be many GiB, so its bytes are never held whole: `POST
//! /api/v1/pools/{pool}/uploads` creates the volume (raw, of the image's exact size) and an
//! upload record; each `PUT /api/v1/uploads/{id}` carries one chunk with `Content-Range:
//! bytes START-END/TOTAL`, which must start at the upload's offset (else `409` with the
//! offset to resume from); `GET` says where the upload is. A chunk's bytes go from the
//! connection through a bounded channel into a libvirt stream writing the volume at the
//! chunk's offset (`mfv_vm::Hypervisor::write_volume_at`), so the server holds a few pieces
//! of a chunk at a time whatever its size. The offset moves only when a whole chunk is
//! written: a dropped connection loses at most the chunk in flight, which the client sends
//! again from `GET`'s offset.
//!
//! Why a libvirt stream and not a file in the pool's directory: it writes the volume the
//! way libvirt does for every pool type (a directory, an LVM volume group, NFS), mfv-web
//! runs unprivileged and needs no access to the pools' files, and libvirt keeps knowing
//! the volume (a refresh when the last byte arrives reads its format and size).
//!
//! Each chunk must arrive within the server's response limit (60 s): send chunks that take
//! well under a minute on the link (64 MiB is a good size on a LAN). Upload records are kept
//! in memory: after a restart of mfv-web an unfinished upload's volume stays, and is deleted
//! like any volume.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::body::{Buf, Bytes};
use mfv_auth::Permission;
use mfv_vm::{ImageFormat, VirtError, VolumeInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warp::http::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderValue, LOCATION};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use super::ApiError;
use super::doc::{Answer, SchemaFn, schema};
use super::storage::{MAX_VOLUME_BYTES, check_volume_name, storage_error, whole_number};
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::vms::{connect, libvirt, with_hypervisor};
use crate::reply::json_response;

/// The largest chunk taken in one request: 64 GiB (a chunk must arrive within the server's
/// response limit anyway).
pub const MAX_CHUNK: usize = 64 << 30;

/// How many pieces of a chunk wait between the connection and libvirt at most.
const PIECES_IN_FLIGHT: usize = 4;

/// How many upload records are kept; past it the oldest complete ones are forgotten, and
/// new uploads are refused while every record is unfinished.
pub const MAX_UPLOADS: usize = 64;

/// The first bytes of every qcow2 image.
const QCOW2_MAGIC: &[u8] = b"QFI\xfb";

/// How long a chunk's body may send nothing before the chunk is given up (the upload stays
/// at its offset; `ApiParts::upload_idle`). The whole chunk may take as long as its size
/// needs (`server::Limits::min_body_rate`); a stalled one must not hold its upload.
pub const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// The header naming a `409`'s offset, as tus does.
const UPLOAD_OFFSET: &str = "upload-offset";

/// The routes.
pub fn routes() -> Vec<Route> {
    let route = |method, path, max_body, (request, answer), operation, summary, handler| Route {
        method,
        path,
        access: Access::Allowed(Permission::ManageStorage),
        max_body,
        query: &[],
        request,
        answer,
        operation,
        summary,
        handler,
    };
    vec![
        route(
            Method::POST,
            "/api/v1/pools/{pool}/uploads",
            SMALL_BODY,
            (
                Some(schema::<NewUpload> as SchemaFn),
                Answer::Created(schema::<UploadAnswer>),
            ),
            "start_upload",
            "Start an upload of an image (name, size_bytes, format iso, raw or qcow2): creates \
             the volume; its bytes follow in PUT /api/v1/uploads/{id}",
            start as fn(Call) -> HandlerFuture,
        ),
        route(
            Method::GET,
            "/api/v1/uploads",
            0,
            (None, Answer::Ok(schema::<UploadList>)),
            "list_uploads",
            "The uploads unfinished or recently complete",
            list,
        ),
        route(
            Method::GET,
            "/api/v1/uploads/{id}",
            0,
            (None, Answer::Ok(schema::<UploadAnswer>)),
            "show_upload",
            "An upload: its offset (where the next chunk starts), size and state",
            show,
        ),
        route(
            Method::PUT,
            "/api/v1/uploads/{id}",
            MAX_CHUNK,
            (None, Answer::Ok(schema::<ChunkWritten>)),
            "put_upload_chunk",
            "One chunk of an upload, streamed, with Content-Range: bytes START-END/TOTAL; \
             START must be the upload's offset (409 with the offset otherwise)",
            put_chunk,
        ),
        route(
            Method::DELETE,
            "/api/v1/uploads/{id}",
            0,
            (None, Answer::Ok(schema::<Cancelled>)),
            "cancel_upload",
            "Cancel an unfinished upload and delete its volume",
            cancel,
        ),
    ]
}

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Waiting for (or receiving) chunks.
    Receiving,
    /// Every byte arrived; the volume is ready.
    Complete,
}

/// An upload as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Upload {
    /// Its id (`/api/v1/uploads/{id}`).
    pub id: String,
    /// The pool of its volume.
    pub pool: String,
    /// Its volume.
    pub volume: String,
    /// What the image is, as declared: `iso`, `raw` or `qcow2`.
    pub format: &'static str,
    /// The image's size, bytes.
    pub size_bytes: u64,
    /// The bytes written so far: where the next chunk starts.
    pub offset: u64,
    /// Where it is.
    pub state: UploadState,
    /// Whether a chunk is being written now.
    pub writing: bool,
    /// Who started it.
    pub started_by: String,
    /// When it started, Unix seconds.
    pub started_at: u64,
}

/// The uploads, unfinished and recently complete. Cheap to clone: clones share them.
#[derive(Debug, Clone, Default)]
pub struct Uploads {
    book: Arc<Mutex<Book>>,
}

#[derive(Debug, Default)]
struct Book {
    next: u64,
    uploads: BTreeMap<u64, Upload>,
}

/// The right to write one chunk of an upload; dropping it lets the next chunk in.
#[derive(Debug)]
struct ChunkClaim {
    uploads: Uploads,
    key: u64,
}

impl Drop for ChunkClaim {
    fn drop(&mut self) {
        if let Some(upload) = self.uploads.book().uploads.get_mut(&self.key) {
            upload.writing = false;
        }
    }
}

impl ChunkClaim {
    /// The chunk of `length` bytes was written: the offset moves past it. (A claimed
    /// upload is neither cancelled nor forgotten, so it is there.)
    fn advance(&self, length: u64) -> Option<Upload> {
        let mut book = self.uploads.book();
        let upload = book.uploads.get_mut(&self.key)?;
        upload.offset += length;
        if upload.offset == upload.size_bytes {
            upload.state = UploadState::Complete;
        }
        Some(upload.clone())
    }
}

impl Uploads {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of the unfinished upload writing volume `volume` of `pool`, if one is.
    pub fn open_for(&self, pool: &str, volume: &str) -> Option<String> {
        self.book()
            .uploads
            .values()
            .find(|upload| {
                upload.state == UploadState::Receiving
                    && upload.pool == pool
                    && upload.volume == volume
            })
            .map(|upload| upload.id.clone())
    }

    /// An unfinished upload into `pool`, if one is: its id and volume.
    pub fn open_in(&self, pool: &str) -> Option<(String, String)> {
        self.book()
            .uploads
            .values()
            .find(|upload| upload.state == UploadState::Receiving && upload.pool == pool)
            .map(|upload| (upload.id.clone(), upload.volume.clone()))
    }

    /// Makes room for one more record, or refuses when every record is unfinished.
    fn make_room(&self) -> Result<(), ApiError> {
        let mut book = self.book();
        while book.uploads.len() >= MAX_UPLOADS {
            let oldest_complete = book
                .uploads
                .iter()
                .find(|(_, upload)| upload.state == UploadState::Complete)
                .map(|(key, _)| *key);
            match oldest_complete {
                Some(key) => book.uploads.remove(&key),
                None => {
                    return Err(ApiError::conflict(format!(
                        "{MAX_UPLOADS} uploads are unfinished: finish or cancel one first"
                    )));
                }
            };
        }
        Ok(())
    }

    /// Records a new upload into the volume `volume` of `pool`.
    fn add(
        &self,
        pool: String,
        volume: String,
        format: &'static str,
        size_bytes: u64,
        started_by: String,
    ) -> Upload {
        let mut book = self.book();
        book.next += 1;
        let key = book.next;
        let upload = Upload {
            id: key.to_string(),
            pool,
            volume,
            format,
            size_bytes,
            offset: 0,
            state: UploadState::Receiving,
            writing: false,
            started_by,
            started_at: now(),
        };
        book.uploads.insert(key, upload.clone());
        upload
    }

    /// The upload `id`, or `404`.
    fn get(&self, id: &str) -> Result<Upload, ApiError> {
        key(id)
            .and_then(|key| self.book().uploads.get(&key).cloned())
            .ok_or_else(|| unknown(id))
    }

    /// The right to write the chunk starting at `start` of upload `id`: refused when the
    /// upload is complete, a chunk is being written, or it is not at `start`.
    fn claim(&self, id: &str, start: u64) -> Result<ChunkClaim, Box<Refusal>> {
        let key = key(id).ok_or_else(|| Box::new(Refusal::Error(unknown(id))))?;
        let mut book = self.book();
        let upload = book
            .uploads
            .get_mut(&key)
            .ok_or_else(|| Box::new(Refusal::Error(unknown(id))))?;
        if upload.state == UploadState::Complete {
            return Err(Box::new(Refusal::Error(ApiError::conflict(format!(
                "upload {id} is complete: volume {:?} of pool {:?} holds every byte",
                upload.volume, upload.pool
            )))));
        }
        if upload.writing {
            return Err(Box::new(Refusal::Offset(
                upload.clone(),
                "another chunk of the upload is being written; wait for it",
            )));
        }
        if start != upload.offset {
            return Err(Box::new(Refusal::Offset(
                upload.clone(),
                "the chunk does not start at the upload's offset; send from there",
            )));
        }
        upload.writing = true;
        Ok(ChunkClaim {
            uploads: self.clone(),
            key,
        })
    }

    /// Forgets the unfinished upload `id` so no chunk can follow, or refuses.
    fn take_unfinished(&self, id: &str) -> Result<Upload, ApiError> {
        let key = key(id).ok_or_else(|| unknown(id))?;
        let mut book = self.book();
        let upload = book.uploads.get(&key).ok_or_else(|| unknown(id))?;
        if upload.state == UploadState::Complete {
            return Err(ApiError::conflict(format!(
                "upload {id} is complete: delete volume {:?} of pool {:?} instead",
                upload.volume, upload.pool
            )));
        }
        if upload.writing {
            return Err(ApiError::conflict(format!(
                "a chunk of upload {id} is being written: cancel when it ends"
            )));
        }
        book.uploads.remove(&key).ok_or_else(|| unknown(id))
    }
}

/// Why a chunk is refused.
#[derive(Debug)]
enum Refusal {
    /// A plain error.
    Error(ApiError),
    /// `409` with the upload's offset, and why.
    Offset(Upload, &'static str),
}

fn key(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("there is no upload {id:?}")).with_field("id")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// `409 conflict` with the offset the upload is at, in the body and the `Upload-Offset`
/// header, so the client resumes there.
fn offset_conflict(upload: &Upload, why: &str) -> Response {
    let mut response = json_response(
        StatusCode::CONFLICT,
        &json!({
            "kind": "conflict",
            "message": format!("{why}: upload {} is at byte {} of {}", upload.id, upload.offset, upload.size_bytes),
            "field": "content-range",
            "offset": upload.offset,
            "upload": upload,
        }),
    );
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(upload.offset));
    response
}

/// A chunk's place: its first byte and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkRange {
    start: u64,
    length: u64,
}

/// The chunk's range from `Content-Range: bytes START-END/TOTAL` (`TOTAL` the upload's size
/// or `*`), checked against `Content-Length` when it is given.
fn chunk_range(headers: &HeaderMap, size: u64) -> Result<ChunkRange, ApiError> {
    let field = "content-range";
    let text = headers
        .get(CONTENT_RANGE)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "a chunk needs \"Content-Range: bytes START-END/TOTAL\" (END inclusive)",
            )
        })?
        .to_str()
        .unwrap_or_default();
    let malformed = || {
        ApiError::invalid(
            field,
            format!("{text:?} is not \"bytes START-END/TOTAL\" (END inclusive)"),
        )
    };
    let (start, end, total) = text
        .strip_prefix("bytes ")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(span, total)| {
            let (start, end) = span.split_once('-')?;
            Some((start.parse::<u64>().ok()?, end.parse::<u64>().ok()?, total))
        })
        .ok_or_else(malformed)?;
    if end < start {
        return Err(malformed());
    }
    if total != "*" && total.parse::<u64>().ok() != Some(size) {
        return Err(ApiError::invalid(
            field,
            format!("the upload's size is {size} bytes, not {total}"),
        ));
    }
    if end >= size {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the chunk ends at byte {end}, past the upload's {size} bytes"),
        )
        .with_field(field));
    }
    let length = end - start + 1;
    if length > MAX_CHUNK as u64 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a chunk has {} GiB at most", MAX_CHUNK >> 30),
        )
        .with_field(field));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|declared| declared != length) {
        return Err(ApiError::invalid(
            "content-length",
            format!("the Content-Range holds {length} bytes, the body declares another length"),
        ));
    }
    Ok(ChunkRange { start, length })
}

/// A chunk's pieces as the blocking writer reads them: whatever the connection delivered,
/// a few pieces ahead at most; the end when the sender is gone.
struct Pieces {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for Pieces {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(piece) => self.current = piece,
                None => return Ok(0),
            }
        }
        let taken = buffer.len().min(self.current.len());
        buffer[..taken].copy_from_slice(&self.current[..taken]);
        self.current.advance(taken);
        Ok(taken)
    }
}

/// `POST /api/v1/pools/{pool}/uploads`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewUpload {
    name: String,
    #[schemars(with = "u64", range(min = 1))]
    size_bytes: Value,
    #[schemars(schema_with = "upload_format")]
    format: String,
}

/// The image formats an upload declares.
fn upload_format(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["iso", "raw", "qcow2"]})
}

/// An upload, as most upload routes answer it.
#[derive(Debug, Serialize, JsonSchema)]
struct UploadAnswer {
    upload: Upload,
}

/// What `GET /api/v1/uploads` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct UploadList {
    uploads: Vec<Upload>,
}

/// What a chunk answers: the upload, and its volume once the last chunk arrived.
#[derive(Debug, Serialize, JsonSchema)]
struct ChunkWritten {
    upload: Upload,
    volume: Option<VolumeInfo>,
}

/// What a cancelled upload answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Cancelled {
    /// The upload's id.
    cancelled: String,
    /// Always `deleted`: the volume went with it.
    volume: &'static str,
}

fn start(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pool = call.param("pool").to_owned();
        let request: NewUpload = call.json()?;
        check_volume_name(&request.name)?;
        let size = whole_number("size_bytes", &request.size_bytes, 1, MAX_VOLUME_BYTES)?;
        let format = match request.format.as_str() {
            "iso" => "iso",
            "raw" => "raw",
            "qcow2" => "qcow2",
            other => {
                return Err(ApiError::invalid(
                    "format",
                    format!("{other:?} is not an image format here: iso, raw or qcow2"),
                ));
            }
        };
        let uploads = call.state.uploads.clone();
        uploads.make_room()?;
        let name = request.name.clone();
        let target_pool = pool.clone();
        // Raw of the image's exact size: the upload fills it byte for byte, and libvirt
        // reads the format from the content when the last byte is in.
        with_hypervisor(uri, move |hypervisor| {
            hypervisor
                .create_volume_as(&target_pool, &name, size, ImageFormat::Raw)
                .map_err(storage_error)
        })
        .await?;
        let started_by = call
            .caller
            .as_ref()
            .map(|caller| caller.username.clone())
            .unwrap_or_default();
        let upload = uploads.add(pool, request.name, format, size, started_by);
        let mut response = json_response(
            StatusCode::CREATED,
            &UploadAnswer {
                upload: upload.clone(),
            },
        );
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", upload.id)) {
            response.headers_mut().insert(LOCATION, location);
        }
        Ok(response)
    })
}

fn list(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uploads: Vec<Upload> = call
            .state
            .uploads
            .book()
            .uploads
            .values()
            .cloned()
            .collect();
        Ok(json_response(StatusCode::OK, &UploadList { uploads }))
    })
}

fn show(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let upload = call.state.uploads.get(call.param("id"))?;
        let mut response = json_response(
            StatusCode::OK,
            &UploadAnswer {
                upload: upload.clone(),
            },
        );
        response
            .headers_mut()
            .insert(UPLOAD_OFFSET, HeaderValue::from(upload.offset));
        Ok(response)
    })
}

/// What writing a chunk came to.
enum Written {
    /// The chunk is in; the volume too when it was the last.
    Done(Upload, Option<VolumeInfo>),
    /// The chunk ended early (the connection dropped): the upload stays at its offset.
    Short(Upload),
}

fn put_chunk(mut call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let id = call.param("id").to_owned();
        let uploads = call.state.uploads.clone();
        let upload = uploads.get(&id)?;
        let range = chunk_range(&call.headers, upload.size_bytes)?;
        let claim = match uploads.claim(&id, range.start) {
            Ok(claim) => claim,
            Err(refusal) => {
                return match *refusal {
                    Refusal::Error(error) => Err(error),
                    Refusal::Offset(upload, why) => Ok(offset_conflict(&upload, why)),
                };
            }
        };
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(PIECES_IN_FLIGHT);
        let (pool, volume) = (upload.pool.clone(), upload.volume.clone());
        // The claim moves to the writer: the next chunk is let in only once libvirt's stream
        // is finished or aborted, even when this request is dropped meanwhile.
        let writer = tokio::task::spawn_blocking(move || -> Result<Written, ApiError> {
            let mut pieces = Pieces {
                receiver,
                current: Bytes::new(),
            };
            let hypervisor = connect(&uri)?;
            match hypervisor.write_volume_at(&pool, &volume, range.start, range.length, &mut pieces)
            {
                Ok(()) => {}
                Err(VirtError::UploadSource { .. }) => {
                    drop(claim);
                    return Ok(Written::Short(uploads.get(&id)?));
                }
                Err(error) => return Err(storage_error(error)),
            }
            let upload = claim.advance(range.length).ok_or_else(|| unknown(&id))?;
            let volume = match upload.state {
                UploadState::Complete => Some(
                    hypervisor
                        .refreshed_volume(&pool, &volume)
                        .map_err(storage_error)?,
                ),
                UploadState::Receiving => None,
            };
            Ok(Written::Done(upload, volume))
        });
        let received = pump(&mut call, &upload, range, sender).await;
        let written = writer.await.map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "writing the chunk failed unexpectedly",
            )
        })?;
        received?;
        match written? {
            Written::Done(upload, volume) => Ok(json_response(
                StatusCode::OK,
                &ChunkWritten { upload, volume },
            )),
            Written::Short(upload) => Err(ApiError::invalid(
                "content-range",
                format!(
                    "the chunk ended before its {} bytes arrived; upload {} stays at byte {}: \
                     send again from there",
                    range.length, upload.id, upload.offset
                ),
            )),
        }
    })
}

/// Moves the chunk's pieces from the connection to the writer, checking that a qcow2
/// image starts like one and that no more than the chunk's bytes arrive. On an error the
/// sender is dropped, so the writer sees the chunk end early and aborts.
async fn pump(
    call: &mut Call,
    upload: &Upload,
    range: ChunkRange,
    sender: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let mut received = 0u64;
    let idle = call.state.upload_idle;
    loop {
        let Ok(next) = tokio::time::timeout(idle, call.stream.next()).await else {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "no bytes of the chunk arrived for {} s; upload {} stays at byte {}: send \
                     again from there",
                    idle.as_secs(),
                    upload.id,
                    range.start
                ),
            ));
        };
        let Some(piece) = next else {
            break;
        };
        let piece = piece?;
        let at = range.start + received;
        if upload.format == "qcow2" && at < QCOW2_MAGIC.len() as u64 {
            let from = usize::try_from(at).unwrap_or_default();
            let checked = piece.len().min(QCOW2_MAGIC.len() - from);
            if piece[..checked] != QCOW2_MAGIC[from..from + checked] {
                return Err(ApiError::invalid(
                    "format",
                    "the image does not start like a qcow2 image: declare its format as raw \
                     or iso, or send the qcow2 file",
                ));
            }
        }
        received += piece.len() as u64;
        if received > range.length {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the body has more than the {} bytes its Content-Range names",
                    range.length
                ),
            ));
        }
        if sender.send(piece).await.is_err() {
            // The writer stopped; its error is the answer.
            return Ok(());
        }
    }
    Ok(())
}

fn cancel(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let upload = call.state.uploads.take_unfinished(call.param("id"))?;
        let (pool, volume) = (upload.pool.clone(), upload.volume.clone());
        with_hypervisor(uri, move |hypervisor| {
            match hypervisor.delete_volume(&pool, &volume) {
                Ok(()) | Err(VirtError::NotFound { .. }) => Ok(()),
                Err(error) => Err(storage_error(error)),
            }
        })
        .await?;
        Ok(json_response(
            StatusCode::OK,
            &Cancelled {
                cancelled: upload.id,
                volume: "deleted",
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, length: Option<&str>) -> Result<ChunkRange, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_str(value).unwrap());
        if let Some(length) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_str(length).unwrap());
        }
        chunk_range(&headers, 100)
    }

    #[test]
    fn chunk_ranges_are_read_strictly() {
        assert_eq!(
            range("bytes 0-9/100", Some("10")).unwrap(),
            ChunkRange {
                start: 0,
                length: 10
            }
        );
        assert_eq!(range("bytes 90-99/*", None).unwrap().length, 10);
        for (value, length, field, status) in [
            ("bytes 9-0/100", None, "content-range", 400),
            ("bytes=0-9/100", None, "content-range", 400),
            ("bytes 0-9", None, "content-range", 400),
            ("bytes 0-9/99", None, "content-range", 400),
            ("bytes 95-104/100", None, "content-range", 413),
            ("bytes 0-9/100", Some("11"), "content-length", 400),
        ] {
            let error = range(value, length).unwrap_err();
            assert_eq!(error.body.field.as_deref(), Some(field), "{value}");
            assert_eq!(error.status.as_u16(), status, "{value}");
        }
        let missing = chunk_range(&HeaderMap::new(), 100).unwrap_err();
        assert_eq!(missing.body.field.as_deref(), Some("content-range"));
    }

    #[test]
    fn a_chunk_is_claimed_once_at_the_offset_and_moves_it() {
        let uploads = Uploads::default();
        let upload = uploads.add("p".into(), "v".into(), "raw", 10, "ada".into());
        assert_eq!(
            uploads.open_for("p", "v").as_deref(),
            Some(upload.id.as_str())
        );
        assert!(matches!(
            uploads.claim(&upload.id, 3).map(drop).unwrap_err().as_ref(),
            Refusal::Offset(..)
        ));
        let claim = uploads.claim(&upload.id, 0).unwrap();
        assert!(uploads.get(&upload.id).unwrap().writing);
        assert!(uploads.claim(&upload.id, 0).is_err());
        assert!(uploads.take_unfinished(&upload.id).is_err());
        assert_eq!(claim.advance(4).unwrap().offset, 4);
        drop(claim);
        let claim = uploads.claim(&upload.id, 4).unwrap();
        assert_eq!(claim.advance(6).unwrap().state, UploadState::Complete);
        drop(claim);
        assert_eq!(uploads.open_for("p", "v"), None);
        assert!(uploads.take_unfinished(&upload.id).is_err());
        assert!(uploads.get("nope").is_err());
    }

    #[test]
    fn records_are_bounded_forgetting_complete_ones_first() {
        let uploads = Uploads::default();
        let first = uploads.add("p".into(), "done".into(), "raw", 1, String::new());
        uploads.claim(&first.id, 0).unwrap().advance(1);
        for index in 1..MAX_UPLOADS {
            uploads.add("p".into(), format!("v{index}"), "raw", 1, String::new());
        }
        uploads.make_room().unwrap();
        assert!(uploads.get(&first.id).is_err());
        uploads.add("p".into(), "last".into(), "raw", 1, String::new());
        assert_eq!(
            uploads.make_room().unwrap_err().status,
            StatusCode::CONFLICT
        );
    }
}
