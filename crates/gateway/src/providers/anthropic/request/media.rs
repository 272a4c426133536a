//! Images and files: `image_url` parts (https by reference, `data:` URIs
//! inline), `file` parts and `document` parts in Anthropic's shape.

use super::*;

/// An `image_url` part: https by reference, a `data:` URI inline (a PDF as a
/// document; in a tool result, plain text too).
pub(super) fn image<'m>(
    url: &'m InImageUrl<'_>,
    cache_control: Option<Cache<'m>>,
    tool_result: bool,
) -> Result<Block<'m>, Error> {
    let (url, format): (&str, Option<&str>) = match url {
        InImageUrl::Url(u) => (u, None),
        InImageUrl::Object { url, format } => (url, format.as_deref()),
    };
    if url.starts_with("https://") {
        return Ok(Block::Image {
            source: Source::Url {
                url: Cow::Borrowed(url),
            },
            cache_control,
        });
    }
    if url.starts_with("http://") {
        return Err(Error::invalid(
            "Image URLs must use https: the gateway does not fetch http:// URLs for Anthropic models (send the image over https or as a data: URI)",
            Some("messages"),
        ));
    }
    let (media_type, data) = data_uri(url, format)?;
    let document = media_type == "application/pdf" || (tool_result && media_type == "text/plain");
    let source = Source::Base64 { media_type, data };
    Ok(if document {
        Block::Document {
            source: DocSource::Built(source),
            title: None,
            context: None,
            citations: None,
            cache_control,
        }
    } else {
        Block::Image {
            source,
            cache_control,
        }
    })
}

/// `data:<media type>;base64,<data>`, borrowed from the input.
fn data_uri<'m>(
    url: &'m str,
    format: Option<&'m str>,
) -> Result<(Cow<'m, str>, Cow<'m, str>), Error> {
    let bad = || {
        bad_request(
            "Image url not in expected format. Example Expected input - \"image_url\": \"data:image/jpeg;base64,{base64_image}\". Supported formats - ['image/jpeg', 'image/png', 'image/gif', 'image/webp'].",
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(bad)?;
    let (media, data) = rest.split_once(";base64,").ok_or_else(bad)?;
    let media = match format {
        Some(f) => Cow::Borrowed(f),
        None if media.contains("\\/") => Cow::Owned(media.replace("\\/", "/")),
        None => Cow::Borrowed(media),
    };
    Ok((media, Cow::Borrowed(data)))
}

/// A `file` part: inline data as a document. URLs and file ids are refused:
/// the gateway fetches nothing, and file ids need Anthropic's Files API.
pub(super) fn file<'m>(
    p: &'m InPart<'_>,
    cache_control: Option<Cache<'m>>,
) -> Result<Block<'m>, Error> {
    let Some(f) = &p.file else {
        return Err(bad_request(
            "Content block has type='file' but is missing the required 'file' field",
        ));
    };
    match (&f.file_data, &f.file_id) {
        (Some(d), _) if !d.is_empty() => {
            if d.starts_with("http") {
                return Err(Error::invalid(
                    "file_data must be a data: URI: the gateway does not fetch URLs for Anthropic models",
                    Some("messages"),
                ));
            }
            let (media_type, data) = data_uri(d, f.format.as_deref())?;
            Ok(Block::Document {
                source: DocSource::Built(Source::Base64 { media_type, data }),
                title: None,
                context: None,
                citations: None,
                cache_control,
            })
        }
        (_, Some(id)) if !id.is_empty() => Err(Error::invalid(
            "file_id is not supported for Anthropic models by this gateway; send the file inline as file_data",
            Some("messages"),
        )),
        _ => Err(bad_request(
            "Either file_data or file_id must be present in the file message",
        )),
    }
}

/// A `document` part the client wrote in Anthropic's shape: its known
/// fields, as sent.
pub(super) fn document<'m>(
    p: &'m InPart<'_>,
    cache_control: Option<Cache<'m>>,
) -> Result<Block<'m>, Error> {
    let Some(source) = p.source else {
        return Err(Error::invalid(
            "a document part needs a 'source'",
            Some("messages"),
        ));
    };
    Ok(Block::Document {
        source: DocSource::Raw(source),
        title: p.title,
        context: p.context,
        citations: p.citations,
        cache_control,
    })
}
