"""How large an image may be, and how much of one is worked on at once: every size limit on
images, pixels and sides, in one place (a base module: every layer may import it).

The modules that apply a limit import it from here; the old names (``images.DEFAULT_MAX_PIXELS``,
``detect.scale.DETECT_MAX_SIDE``...) stay importable from their modules.
"""

# -- what is read and decoded at all ------------------------------------------------------------

#: Largest image decoded by default: 100 megapixels (a 12,000 x 8,000 photo).
DEFAULT_MAX_PIXELS = 100_000_000
#: Largest image file read (an uncompressed 16-bit 100 MP TIFF is 600 MB; photos are far smaller).
MAX_IMAGE_FILE_BYTES = 768 * 2**20
#: The most bytes read from one URL (a photo, not a video or a disk image).
MAX_URL_BYTES = 64 << 20

# -- how much of an image is worked on at once ---------------------------------------------------

#: A 16-bit, 32-bit or float image is rescaled to 8 bits this many pixels at a time: its working
#: memory is a few MB whatever its size (whole-image float64 copies cost ~20 bytes a pixel).
DEEP_BLOCK_PIXELS = 1 << 20
#: Pixels per detection batch: bounds memory when photos are large.
DETECT_BATCH_PIXELS = 64e6
#: Host photos larger than this are cropped face by face from host memory, so that the full-size
#: picture never becomes a float tensor (a 40-megapixel photo would take 480 MB).
HOST_CROP_PIXELS = 4_000_000
#: At most this many pixels go through YuNet in one network call on the CPU: 8 LFW images (250x250).
#: Eight at a time ran 3% faster than one at a time, 32 at a time 10% slower (the activations
#: outgrow the cache); a large photo goes alone.
YUNET_BATCH_PIXELS = 8 * 256 * 256
#: On a GPU, at most this many pixels per YuNet network call: 256 LFW images (padded to 256x256).
YUNET_DEVICE_BATCH_PIXELS = 256 * 256 * 256

# -- the sides faces are searched at -------------------------------------------------------------

#: Images larger than this (longest side, px) are detected on a downscaled copy; boxes are
#: mapped back and crops are cut from the full-resolution image.
DETECT_MAX_SIDE = 1600
#: Video frames are searched for faces at this longest side (1080p and 720p -> 960x540; YuNet
#: found as many faces there as at 1280x720); crops come from the full frame.
VIDEO_DETECT_SIDE = 960

# -- what one request to the service may carry (facerec serve; server.limits.Limits' defaults) --

#: One decoded image of a request: 40 megapixels (a large phone photo), well under DEFAULT_MAX_PIXELS.
SERVE_MAX_PIXELS = 40_000_000
#: All images of one request together (they are decoded one at a time).
SERVE_MAX_REQUEST_PIXELS = 200_000_000
#: The whole body of an image request.
SERVE_MAX_UPLOAD_BYTES = 10 * 2**20
#: One video upload.
SERVE_MAX_VIDEO_BYTES = 50 * 2**20
