//! Images given as http(s) URLs, for providers that take only inline bytes: fetched (through
//! the SSRF-guarded fetcher, all at once) and written into the request as `data:` URLs.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::try_join_all;
use tollgate_core::error::GatewayError;
use tollgate_upstream::media::MediaFetcher;
use tollgate_wire::openai::ChatRequest;
use tollgate_wire::raw::TextOr;

/// Most remote images fetched for one request.
const MAX_FETCHES: usize = 32;

/// Replaces every http(s) image URL in `request` by the image itself.
pub(crate) async fn inline_remote_images(
    request: &mut ChatRequest<'_>,
    fetcher: &MediaFetcher,
) -> Result<(), GatewayError> {
    let mut urls: Vec<&mut Cow<'_, str>> = request
        .messages
        .iter_mut()
        .filter_map(|message| match &mut message.content {
            Some(TextOr::List(parts)) => Some(parts),
            _ => None,
        })
        .flatten()
        .filter_map(|part| part.image_url.as_mut())
        .map(|image| &mut image.url)
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .collect();
    if urls.is_empty() {
        return Ok(());
    }
    if urls.len() > MAX_FETCHES {
        return Err(GatewayError::invalid_param(
            "messages",
            format!("At most {MAX_FETCHES} image URLs can be fetched for one request."),
        ));
    }
    let fetched = try_join_all(urls.iter().map(|url| fetcher.fetch(url))).await?;
    for (url, media) in urls.iter_mut().zip(fetched) {
        **url = Cow::Owned(format!(
            "data:{};base64,{}",
            media.media_type,
            STANDARD.encode(&media.bytes)
        ));
    }
    Ok(())
}
