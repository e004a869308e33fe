/* Placeholders until each family's timm mapping is written. */
#include "models.h"

int tl_timm_name_resnet(const char *arch, const char *tv_name, char *out, size_t n) { (void)arch; (void)tv_name; (void)out; (void)n; return -1; }
int tl_timm_name_vgg(const char *arch, const char *tv_name, char *out, size_t n) { (void)arch; (void)tv_name; (void)out; (void)n; return -1; }
int tl_timm_name_mobilenet(const char *arch, const char *tv_name, char *out, size_t n) { (void)arch; (void)tv_name; (void)out; (void)n; return -1; }
int tl_timm_name_efficientnet(const char *arch, const char *tv_name, char *out, size_t n) { (void)arch; (void)tv_name; (void)out; (void)n; return -1; }
int tl_timm_name_vit(const char *arch, const char *tv_name, char *out, size_t n) { (void)arch; (void)tv_name; (void)out; (void)n; return -1; }
