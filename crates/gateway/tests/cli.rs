//! The binary itself: `--check`, config errors reported at once with their
//! paths, warnings for keys we do not implement grouped by meaning,
//! `--version`, and a real process shut down by SIGTERM.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output};

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateway"));
    c.env_remove("GATEWAY_CONFIG")
        .env_remove("AIM_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG");
    c
}

fn config_file(yaml: &str) -> tempfile_lite::File {
    tempfile_lite::File::new(yaml)
}

/// A tiny temp file helper (no extra crate needed).
mod tempfile_lite {
    use std::path::PathBuf;
    pub struct File(pub PathBuf);
    impl File {
        pub fn new(content: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("gateway-test-{}.yaml", uuid::Uuid::new_v4()));
            std::fs::write(&path, content).unwrap();
            File(path)
        }
    }
    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn check_prints_a_summary() {
    let f = config_file(
        "model_list:\n  - model_name: gpt-3.5-turbo\n    litellm_params:\n      model: openai/gpt-3.5-turbo\n      api_key: os.environ/TEST_OPENAI_KEY\nguardrails:\n  - guardrail_name: aim-protected-app\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, post_call]\n      api_key: k\nvirtual_keys:\n  - key: sk-a\n    key_alias: alice\n",
    );
    let (code, out, err) = run(gateway()
        .arg("--check")
        .arg("--config")
        .arg(&f.0)
        .env("TEST_OPENAI_KEY", "sk-x"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gpt-3.5-turbo -> openai/gpt-3.5-turbo"),
        "{out}"
    );
    assert!(
        out.contains("aim-protected-app (aim, [pre_call, post_call])"),
        "{out}"
    );
    assert!(out.contains("alice"), "{out}");
    assert!(
        !out.contains("sk-x") && !out.contains("sk-a"),
        "no secret in the summary"
    );

    // GATEWAY_CONFIG works as --config.
    let (code, _, _) = run(gateway()
        .arg("--check")
        .env("GATEWAY_CONFIG", &f.0)
        .env("TEST_OPENAI_KEY", "sk-x"));
    assert_eq!(code, 0);
}

#[test]
fn every_error_is_reported_at_once_with_its_path() {
    let f = config_file(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: os.environ/GATEWAY_TEST_MISSING_VAR\n  - model_name: b\n    litellm_params:\n      model: openai/b\n      timeout: soon\n  - model_name: c\n    litellm_params:\n      model: bogus/c\nguardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, whenever]\n",
    );
    let (code, out, err) = run(gateway().arg("--check").arg("--config").arg(&f.0));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("error: invalid config\n"), "{out}");
    for needle in [
        "model_list[0].litellm_params.api_key: environment variable GATEWAY_TEST_MISSING_VAR is not set",
        "model_list[1].litellm_params.timeout: expected a non-negative number, found \"soon\"",
        "model_list[2].litellm_params.model: unknown provider 'bogus'",
        "guardrails[0].litellm_params.mode: guardrail 'g': unknown mode 'whenever'",
        "guardrails[0].litellm_params.api_key: Couldn't get Aim api key, either set the `AIM_API_KEY` in the environment or pass it as a parameter to the guardrail in the config file",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn unknown_keys_are_warnings_grouped_by_meaning_and_the_config_still_loads() {
    let f = config_file(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: k\n      drop_params: true\nlitellm_settings:\n  success_callback: [langfuse]\ngeneral_settings:\n  database_url: postgres://x\n",
    );
    let (code, out, err) = run(gateway().arg("--check").arg("--config").arg(&f.0));
    assert_eq!(code, 0, "{out}{err}");
    for group in [
        "ignored: logging callback\n  litellm_settings.success_callback[0]: 'langfuse'\n",
        "ignored: needs a database\n  general_settings.database_url: ",
        "ignored: not implemented\n  model_list[0].litellm_params.drop_params: ",
    ] {
        assert!(out.contains(group), "{group:?} in {out}");
    }
}

#[test]
fn version_and_missing_config() {
    let (code, out, _) = run(gateway().arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("gateway {}", env!("CARGO_PKG_VERSION")));
    let (code, _, err) = run(&mut gateway());
    assert_eq!(code, 2);
    assert!(err.contains("--config"), "{err}");
    let (code, out, _) = run(gateway().args(["--check", "--config", "/nonexistent/config.yaml"]));
    assert_eq!(code, 1);
    assert!(
        out.contains("cannot read /nonexistent/config.yaml"),
        "{out}"
    );
}

/// A real gateway process on a free port, serving one `mock_response`
/// model, with `args` added; a connection once it listens.
#[cfg(unix)]
fn serve(
    args: &[&str],
    stderr: std::process::Stdio,
) -> (
    std::process::Child,
    std::net::TcpStream,
    tempfile_lite::File,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = config_file(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      mock_response: hi\n",
    );
    let mut child = gateway()
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .arg("--config")
        .arg(&f.0)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            return (child, s, f);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway did not start listening");
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_the_process_down() {
    let (child, mut s, _config) = serve(&["--log-format", "json"], std::process::Stdio::piped());
    let _ = s.write_all(b"GET /health/liveliness HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{log}", output.status);
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(log.contains("shutdown signal received"), "{log}");
}

/// CPU time (user + system) of a process so far, in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat(5); the slice starts at 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn busy_poll_serves_requests_then_sleeps() {
    use std::io::{BufRead, BufReader, Read};
    let (mut child, stream, _config) = serve(
        &["--num-workers", "2", "--busy-poll-us", "2000"],
        std::process::Stdio::null(),
    );
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#;
    for _ in 0..50 {
        write!(
            writer,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).unwrap();
        assert!(String::from_utf8_lossy(&answer).contains("\"hi\""));
    }
    // Idle: past the window the workers sleep instead of spinning. A spinning
    // worker would burn about one tick per 10 ms.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = cpu_ticks(child.id());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let idle = cpu_ticks(child.id()) - before;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    assert!(idle <= 5, "{idle} ticks of CPU in 500 ms idle");
}
