// libwebp 1.2: the decoder, and the demuxer's animation decoder that Pillow reads every WebP with.
#include <webp/decode.h>
#include <webp/demux.h>
