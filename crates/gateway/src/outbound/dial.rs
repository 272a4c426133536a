//! Connections: DNS, TCP and the proxy tunnel, for HTTP calls and the
//! websocket alike.

use super::*;

/// TCP to a destination, or through its proxy.
#[derive(Clone)]
pub(super) struct Dialer {
    pub(super) tcp: HttpConnector,
    pub(super) proxy: Arc<Matcher>,
}

impl Dialer {
    /// Direct; or a CONNECT tunnel through the proxy for `https://` (and
    /// when `tunnel` is set, for websockets); or, for plain HTTP, a
    /// connection to the proxy itself, marked so that hyper sends requests
    /// in absolute form.
    pub(super) async fn dial(self, dst: Uri, tunnel: bool) -> Result<Tcp, BoxError> {
        let Some(proxy) = self.proxy.intercept(&dst) else {
            let io = self.tcp.oneshot(dst).await?;
            return Ok(Tcp { io, proxied: false });
        };
        if tunnel || dst.scheme() == Some(&Scheme::HTTPS) {
            let mut connect = Tunnel::new(proxy.uri().clone(), self.tcp);
            if let Some(auth) = proxy.basic_auth() {
                connect = connect.with_auth(auth.clone());
            }
            let io = connect.oneshot(dst).await?;
            return Ok(Tcp { io, proxied: false });
        }
        let io = self.tcp.oneshot(proxy.uri().clone()).await?;
        Ok(Tcp { io, proxied: true })
    }
}

impl tower::Service<Uri> for Dialer {
    type Response = Tcp;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Tcp, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HttpConnector is always ready; `dial` checks again on its clones.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        Box::pin(self.clone().dial(dst, false))
    }
}

/// A TCP connection, to the destination or to a proxy.
pub(super) struct Tcp {
    pub(super) io: TokioIo<TcpStream>,
    /// Connected to an HTTP proxy that forwards plain-HTTP requests.
    pub(super) proxied: bool,
}

impl Connection for Tcp {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The proxy rules of the settings (values already checked by the config).
pub(super) fn proxy_matcher(s: &Outbound) -> Matcher {
    fn value(v: &Option<crate::config::Secret>) -> &str {
        v.as_ref().map_or("", |s| s.expose())
    }
    Matcher::builder()
        .http(value(&s.http_proxy))
        .https(value(&s.https_proxy))
        .all(value(&s.all_proxy))
        .no(s.no_proxy.as_deref().unwrap_or(""))
        .build()
}
