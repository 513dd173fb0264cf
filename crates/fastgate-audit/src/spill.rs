//! The spill file: checksummed NDJSON, appended when the sink cannot take records, replayed
//! when it can again.
//!
//! One record per line: `<crc32 as 8 lowercase hex digits> <compact JSON>\n`. The checksum
//! covers the JSON bytes, so a line torn by `kill -9` or a crash mid-write (or any other
//! damage) is detected and skipped instead of poisoning the replay. Compact `serde_json`
//! output never contains a raw newline, so lines cannot be confused.

use std::io;
use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

use crate::{AsAuditRef, AuditRecord, AuditRecordRef};

/// File name of the spill file inside the configured spill directory.
pub const SPILL_FILE_NAME: &str = "audit-spill.ndjson";

/// File name of the quarantine file: records the sink rejected one by one while it accepted
/// others (a poison record), kept in the same format for an operator to inspect.
pub const REJECTED_FILE_NAME: &str = "audit-rejected.ndjson";

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of `data` (hardware-accelerated where
/// the CPU allows).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Append the spill line for `record` (terminated by `\n`) to `out`.
///
/// A non-finite `duration_ms` (which JSON cannot carry and would make the line unreadable)
/// is written as 0.
pub(crate) fn encode_line(
    record: &AuditRecordRef<'_>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    // Placeholder for the checksum, filled in once the JSON is written after it.
    out.extend_from_slice(b"00000000 ");
    let json_start = out.len();
    if record.duration_ms.is_finite() {
        serde_json::to_writer(&mut *out, record)?;
    } else {
        let mut fixed = *record;
        fixed.duration_ms = 0.0;
        serde_json::to_writer(&mut *out, &fixed)?;
    }
    let sum = crc32(&out[json_start..]);
    write_hex8(&mut out[start..json_start - 1], sum);
    out.push(b'\n');
    Ok(())
}

/// `sum` as 8 lowercase hex digits into `dst` (8 bytes).
fn write_hex8(dst: &mut [u8], sum: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in dst.iter_mut().enumerate().take(8) {
        let shift = 28 - 4 * i as u32;
        *b = HEX[((sum >> shift) & 0xF) as usize];
    }
}

/// Why a spill line was skipped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// No `<checksum> ` prefix.
    Malformed,
    /// The checksum does not match the payload (torn or damaged line).
    Checksum,
    /// The checksum matched but the payload is not an audit record.
    Json,
}

/// Decode one spill line (with or without its trailing newline).
pub(crate) fn decode_line(line: &[u8]) -> Result<AuditRecord, LineError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (sum, json) = match (line.get(..8), line.get(8), line.get(9..)) {
        (Some(sum), Some(b' '), Some(json)) => (sum, json),
        _ => return Err(LineError::Malformed),
    };
    let sum = std::str::from_utf8(sum)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or(LineError::Malformed)?;
    if crc32(json) != sum {
        return Err(LineError::Checksum);
    }
    serde_json::from_slice(json).map_err(|_| LineError::Json)
}

/// The open spill file: appended in whole lines, truncated after a successful replay.
pub(crate) struct SpillFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl SpillFile {
    /// Create `dir` if needed and open (or create) the spill file in append mode. A last
    /// line without its newline (torn by a crash) is terminated so that the next append
    /// starts on a fresh line; the torn line itself fails its checksum at replay.
    pub(crate) async fn open(dir: &Path, name: &str) -> io::Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join(name);
        let mut file = append_options().open(&path).await?;
        restrict_file(&file.metadata().await?, &path)?;
        let mut len = file.metadata().await?.len();
        if len > 0 {
            let mut reader = File::open(&path).await?;
            reader.seek(io::SeekFrom::End(-1)).await?;
            let mut last = [0u8; 1];
            reader.read_exact(&mut last).await?;
            if last != [b'\n'] {
                file.write_all(b"\n").await?;
                file.sync_data().await?;
                len += 1;
            }
        }
        Ok(Self { path, file, len })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes currently in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `records` with one write and make them durable (`fdatasync`).
    pub(crate) async fn append<R: AsAuditRef>(&mut self, records: &[R]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for record in records {
            encode_line(&record.audit_ref(), &mut buf).map_err(io::Error::other)?;
        }
        self.file.write_all(&buf).await?;
        self.file.sync_data().await?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Empty the file after everything in it was replayed.
    pub(crate) async fn truncate(&mut self) -> io::Result<()> {
        self.file.set_len(0).await?;
        self.file.sync_all().await?;
        self.len = 0;
        Ok(())
    }

    /// Flush metadata too (used at shutdown).
    pub(crate) async fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all().await
    }

    /// A line reader over the file from its beginning. Lines appended while reading are
    /// seen by the reader.
    pub(crate) async fn reader(&self) -> io::Result<LineReader> {
        LineReader::open(&self.path).await
    }
}

fn append_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Create `dir` (and its parents) if missing; the directory itself is made owner-only
/// (0700 on Unix), also when it already existed with wider permissions.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// An audit file found with group/other permissions (made by an older version, or by
/// hand) is narrowed to 0600.
pub(crate) fn restrict_file(meta: &std::fs::Metadata, path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, path);
    Ok(())
}

/// Synchronous single-record append, used only after the writer stopped (a record sent
/// after shutdown). One `write` call per line, `O_APPEND`, so concurrent appenders never
/// interleave within a line.
pub(crate) fn append_blocking(path: &Path, record: &AuditRecordRef<'_>) -> io::Result<()> {
    use std::io::Write;
    let mut line = Vec::with_capacity(1024);
    encode_line(record, &mut line).map_err(io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(&line)?;
    file.sync_data()
}

/// Reads the spill file line by line.
pub(crate) struct LineReader {
    inner: BufReader<File>,
    buf: Vec<u8>,
}

impl LineReader {
    /// A line reader over the file at `path`, from its beginning.
    pub(crate) async fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path).await?;
        Ok(Self {
            inner: BufReader::with_capacity(64 * 1024, file),
            buf: Vec::new(),
        })
    }

    /// The next line (with its newline, if any), or `None` at the end of the file.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.buf.clear();
        let n = self.inner.read_until(b'\n', &mut self.buf).await?;
        Ok(if n == 0 { None } else { Some(&self.buf) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_record;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn line_round_trips() {
        let record = sample_record("r-1");
        let mut buf = Vec::new();
        encode_line(&record.view(), &mut buf).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(decode_line(&buf).unwrap(), record);
        // Without the newline (complete but unterminated) it still decodes.
        assert_eq!(decode_line(&buf[..buf.len() - 1]).unwrap(), record);
    }

    #[test]
    fn newlines_inside_values_stay_escaped() {
        let mut record = sample_record("r-2");
        record.response_body = Some("line one\nline two\r\n".into());
        let mut buf = Vec::new();
        encode_line(&record.view(), &mut buf).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(decode_line(&buf).unwrap(), record);
    }

    #[test]
    fn damaged_lines_are_rejected() {
        let mut buf = Vec::new();
        encode_line(&sample_record("r-3").view(), &mut buf).unwrap();
        let torn = &buf[..buf.len() / 2];
        assert_eq!(decode_line(torn), Err(LineError::Checksum));
        let mut flipped = buf.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        assert_eq!(decode_line(&flipped), Err(LineError::Checksum));
        assert_eq!(decode_line(b"abc"), Err(LineError::Malformed));
        assert_eq!(decode_line(b"zzzzzzzz {}"), Err(LineError::Malformed));
        assert_eq!(decode_line(b""), Err(LineError::Malformed));
        let json = b"{\"a\":1}";
        let line = format!("{:08x} {}", crc32(json), std::str::from_utf8(json).unwrap());
        assert_eq!(decode_line(line.as_bytes()), Err(LineError::Json));
    }

    #[tokio::test]
    async fn open_terminates_a_torn_tail_and_appends_on_a_fresh_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPILL_FILE_NAME);
        let mut good = Vec::new();
        encode_line(&sample_record("a").view(), &mut good).unwrap();
        let mut torn = Vec::new();
        encode_line(&sample_record("b").view(), &mut torn).unwrap();
        torn.truncate(torn.len() / 2);
        std::fs::write(&path, [good.as_slice(), torn.as_slice()].concat()).unwrap();

        let mut file = SpillFile::open(dir.path(), SPILL_FILE_NAME).await.unwrap();
        file.append(&[sample_record("c")]).await.unwrap();
        let mut reader = file.reader().await.unwrap();
        let mut ids = Vec::new();
        let mut bad = 0;
        while let Some(line) = reader.next_line().await.unwrap() {
            match decode_line(line) {
                Ok(r) => ids.push(r.request_id),
                Err(_) => bad += 1,
            }
        }
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(bad, 1);
        assert_eq!(file.len(), std::fs::metadata(&path).unwrap().len());
        file.truncate().await.unwrap();
        assert!(file.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn audit_files_and_their_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spill");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join(SPILL_FILE_NAME);
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = SpillFile::open(&dir, SPILL_FILE_NAME).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(file.path()), 0o600);
        let fresh = root.path().join("new").join("spill");
        let other = SpillFile::open(&fresh, REJECTED_FILE_NAME).await.unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(other.path()), 0o600);
    }

    #[tokio::test]
    async fn blocking_append_writes_a_valid_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = SpillFile::open(dir.path(), SPILL_FILE_NAME).await.unwrap();
        append_blocking(file.path(), &sample_record("late").view()).unwrap();
        let mut reader = file.reader().await.unwrap();
        let line = reader.next_line().await.unwrap().unwrap().to_vec();
        assert_eq!(decode_line(&line).unwrap().request_id, "late");
        assert!(reader.next_line().await.unwrap().is_none());
    }
}
