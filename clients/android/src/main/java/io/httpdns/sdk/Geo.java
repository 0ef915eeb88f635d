package io.httpdns.sdk;

/** Where the server located the client. Every field may be null when unknown. */
public final class Geo {
    public final String country;
    public final String province;
    public final String city;
    public final String carrier;
    public final Long asn;

    public Geo(String country, String province, String city, String carrier, Long asn) {
        this.country = country;
        this.province = province;
        this.city = city;
        this.carrier = carrier;
        this.asn = asn;
    }

    @Override
    public String toString() {
        return "Geo{" + country + "," + province + "," + city + "," + carrier + ",AS" + asn + "}";
    }
}
