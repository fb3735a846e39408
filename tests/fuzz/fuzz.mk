# tests/fuzz/fuzz.mk: the libFuzzer drivers, for GNU make, run by "make
# fuzz" from the build directory.  The library's sources (and the few of
# fcgi/ a driver needs) are compiled again with FUZZ_CC (clang), ASan,
# UBSan and libFuzzer's coverage into fuzz/, apart from the gcc build;
# each driver is linked with -fsanitize=fuzzer into fuzz/fuzz_NAME.
# Makefile.am passes FUZZ_CC, srcdir, DRIVERS, FUZZ_CPPFLAGS, PKG_CFLAGS
# and PKG_LIBS.
O = fuzz
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FLAGS = -g -O1 $(SAN)
LIB_SRC = $(wildcard $(srcdir)/lib/*.c)
SHOP_SRC = $(wildcard $(srcdir)/shop/*.c)
LIB_OBJ = $(patsubst $(srcdir)/lib/%.c,$(O)/lib/%.o,$(LIB_SRC)) \
	$(patsubst $(srcdir)/shop/%.c,$(O)/shop/%.o,$(SHOP_SRC))
HEADERS = $(wildcard $(srcdir)/lib/*.h $(srcdir)/shop/*.h $(srcdir)/fcgi/*.h \
	$(srcdir)/tests/fuzz/*.h) config.h
BINS = $(addprefix $(O)/fuzz_,$(DRIVERS))

all: $(BINS)

$(O)/lib/%.o: $(srcdir)/lib/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(PKG_CFLAGS) $(FLAGS) \
	    -fsanitize=fuzzer-no-link -c $< -o $@
$(O)/shop/%.o: $(srcdir)/shop/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(PKG_CFLAGS) $(FLAGS) \
	    -fsanitize=fuzzer-no-link -c $< -o $@
$(O)/fcgi/%.o: $(srcdir)/fcgi/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(PKG_CFLAGS) $(FLAGS) \
	    -fsanitize=fuzzer-no-link -c $< -o $@
$(O)/drivers/%.o: $(srcdir)/tests/fuzz/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(PKG_CFLAGS) $(FLAGS) \
	    -fsanitize=fuzzer-no-link -c $< -o $@

$(O)/libagora.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

# The drivers of code outside libagora.
$(O)/fuzz_multipart: $(O)/fcgi/multipart.o
$(O)/fuzz_signature: $(O)/fcgi/signature.o

$(O)/fuzz_%: $(O)/drivers/%.o $(O)/libagora.a
	$(FUZZ_CC) $(FLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) \
	    $(O)/libagora.a $(PKG_LIBS)

.PHONY: all
.SECONDARY:
