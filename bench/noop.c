/*
 * noop.c: the do-nothing FastCGI program, the ceiling the benchmarks
 * compare agora's programs with.  It uses libfcgi alone, as a bare program
 * would, and answers every request with a fixed two-byte JSON body.
 */
#include <fcgiapp.h>

int
main(void)
{
	static const char resp[] = "Status: 200 OK\r\n"
	                           "Content-Type: application/json\r\n"
	                           "Content-Length: 2\r\n\r\n{}";
	FCGX_Request rq;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&rq, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&rq) >= 0) {
		FCGX_PutStr(resp, (int)sizeof(resp) - 1, rq.out);
		FCGX_Finish_r(&rq);
	}
	return 0;
}
