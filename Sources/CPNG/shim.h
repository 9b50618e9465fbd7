// libpng 1.6, including the simplified png_image_* API that needs no setjmp.
#include <png.h>
